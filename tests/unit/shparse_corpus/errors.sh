## what bash -n rejects (each must be refused)
echo $(
echo `
echo "
echo '
echo ${x
${
echo $((
echo $[
echo $'x
echo $"x
if true
if true; then
if; then fi
then
fi
done
esac
}
{ }
{ ! }
(
( )
)
echo )
echo ((
echo @(a)
a=1 (x)
a=(x)(y)
echo a=(x)
command declare a=(1)
a=(1 2
a=(x;y)
f() echo
function
function f
f()
coproc
select
for
for x in a b { :; }
for x { :; }
case
case x
case x in
case x in a) echo
case x in a) echo;;
case x in ;; esac
case x in a) ;; ;; esac
while
while :; do
until :; done
[[
[[ a
[[ a ==
[[ ( a ]]
[[ a =~ ( ]]
[[ a b ]]
[[ 1<2 ]]
[[ a ; ]]
((a) + (b))
echo >
echo 2>
echo >&
cat <<
cat <
ls | | x
ls && && x
ls ; ; x
;
&
| x
! && echo z
! &
! ; ; echo
time | x
! | x
a=1 ((x))
x ((
echo $(if)
echo ${x:-$(if)}
echo $(case)
echo $( ) )
if true; then :; fi if
echo a; then
{ echo }
echo hi >&file >
echo "$(echo ")"
for ((;;
echo $(( $(if) ))
echo "${x:-$(fi)}"
a[1=x
echo <(
echo $(echo `)
f() { echo; } }
coproc n if
case x in a) ;; esac esac
echo a | &
echo a && | b
{ echo; } {
(echo) (echo)
if :; then; fi
while :; do; done
for x in a; do; done
echo ;;
echo ;&
time -p | x
function f () echo
