## every construct RUNNER-OPS.md 7.5 lists, and tricky ones, as bash accepts them
## (never run: test_shparse gives each to `bash -n` only; still, nothing here harms)
ls -l | grep foo
ls; whoami
ls && whoami || id
ls & whoami &
ls |& cat
(cd /tmp && ls)
{ ls; pwd; }
#{
{ ls
pwd
}
#}
if true; then echo a; elif false; then echo b; else echo c; fi
for x in a b c; do echo $x; done
for x; do echo $x; done
for x do echo; done
#{
for x
do echo; done
#}
#{
for x
in a b
do echo; done
#}
for x in; do :; done
for x in do; do echo; done
for ((i=0; i<3; i++)); do echo $i; done
for ((;;)) { break; }
for ((i=0;i<3;i++)) do :; done
for x; { :; }
select x in a b; do break; done
select x; do :; done
while read l; do echo "$l"; done < f
until false; do :; done
case $x in a) echo a;; b|c) echo bc;& (d) echo d;;& *) ;; esac
case x in esac
case x in (esac) ;; esac
case x in a|esac) ;; esac
#{
case x in
a)
;;
esac
#}
#{
case x
in a) ;; esac
#}
case x in a) echo; esac
case $(x) in $(y)) ;; esac
case x in in) ;; esac
f() { echo hi; }
f() ( echo hi )
f () [[ x ]]
f () ((x))
f () for x; do :; done
f () if :; then :; fi
f() { :; } >x
#{
f()
{ :; }
#}
function f { :; }
function f() { :; }
#{
function f
{ :; }
#}
function f () ( : )
function f { :; } > x
function f if true; then :; fi
function f (echo hi)
"f"() { :; }
f$x() { :; }
time ls
time -p ls
time -p -- ls
time -- ls
time
time ;
time ; echo y
! true
! ! true
!
! ; echo x
{ ! ; }
! time x
a | time b
coproc x
coproc n x
coproc n x y
coproc { x; }
coproc n { x; }
coproc n ( x )
coproc a=1 x
echo $(whoami)
echo `whoami`
echo "$(whoami)"
echo "`whoami`"
echo $(echo $(echo $(id)))
echo `echo \`id\``
echo "`echo \"hi\"`"
cat <(ls) >(wc)
echo a<(ls)
diff <(sort a) <(sort b)
echo $((1 + 2))
echo $(( $(n) + 1 ))
echo $[1+2]
echo $[ $(n) ]
echo $((echo hi) )
echo ${x:-$(cmd)}
echo "${x:-$(cmd)}"
echo ${x:-`cmd`}
echo ${x[$(i)]}
echo ${#x} ${!x} ${x##*/} ${x/a/b} ${x^^} ${x,,} ${x:1:2} ${x@Q}
echo "${x:-'}'}"
echo ${x:-"}"}
echo ${x:-<(cmd)}
a=1
a=1 b=2 c
a=(x y z)
a=(x $(y))
#{
a=(x
 y # comment
 z)
#}
a=([k]=v [k2]=$(w))
a[1]=x
a[1 + 2]=x
a[$(i)]=x
a+=(x)
a+=x
declare -a x=(1 2)
declare a[1 2]=x
export A=1 B=$(id)
local x=1
readonly y=2
typeset z
let 'x = 1 + 2'
eval a=(1)
let a=(1)
x=1 declare a=(1)
>x a=(1)
>x a=1 b
echo x; declare a=(1)
case a in a) declare a=(1);; esac
[[ -f x ]]
[[ -f x && -d y || ! -e z ]]
[[ ( a == b ) ]]
[[ a < b ]]
[[ a > b ]]
[[ a <(x) ]]
[[ (a) ]]
[[ a == (b) ]]
[[ a == b|c ]]
[[ a = @(b|c) ]]
[[ a == !(b) ]]
[[ a != +(b) ]]
[[ a =~ (a b) ]]
[[ a =~ x|y ]]
[[ a =~ ^[0-9]+$ ]]
[[ $(id) == x ]]
[[ a -nt b && c -ef d ]]
#{
[[ a &&
 b ]]
#}
#{
[[
a ]]
#}
[[ -f x y ]]
[[ x -eq ]]
[[ ! -f x ]]
[[ a ]] && [[ b ]]
a=1 [[ x ]]
(( x = 1 + 2 ))
(( $(n) ))
(( ))
((a) )
((x)); ((y))
(( a[$(i)]++ ))
echo hi > out
echo hi >> out
echo hi >| out
echo hi &> out
echo hi &>> out
echo hi 2> err
echo hi 2>> err
echo hi <> f
echo hi >&file
echo hi >& file
echo hi 2>&1
echo hi 1>&2
echo hi >&-
echo hi <&-
echo hi >&2-
exec {fd}>x
{fd}>x
exec 3<> f
cat < in
cat <<< "$(id)"
#{
cat <<EOF
hello $(whoami)
EOF
#}
#{
cat <<'EOF'
hello $(whoami)
EOF
#}
#{
cat <<"EOF"
x
EOF
#}
#{
cat <<-EOF
	x
	EOF
#}
#{
cat <<A <<B
a
A
b
B
#}
#{
cat <<EOF; echo after
x
EOF
#}
#{
x=$(cat <<EOF
inner
EOF
)
#}
#{
x=$(cat <<EOF)
body
EOF
#}
#{
cat <<EOF
no end
#}
cat <<EOF
#{
cat <<E\
OF
x
EOF
#}
#{
echo $(cat <<EOF
x
EOF)
#}
#{
cat <<EOF
a \
b $x ${y} $((1)) `id` \$(not)
EOF
#}
#{
cat <<A $(cat <<B)
b
B
a
A
#}
echo hi # comment
# only a comment
#{
echo hi \
  there
#}
#{
ec\
ho hi
#}
#{
echo 'a
b'
#}
#{
echo "a
b"
#}
echo $'a\nb' $"x"
echo $'\''
echo \$x \' \"
echo "\$x \" \\ \`"
echo a\ b
echo {a,b} ~ ~/x *.txt ?
echo 'it''s'
echo ""
echo ''
2>&1
>out
< in cat
echo }
echo {
echo ]]
echo [[
echo if then fi
echo esac
a=1 if
a=1 {
a=1 }
a=1 !
f=()
echo $ $$ $1 $@ $* $# $? $- $!
echo "$"
echo ${x:+a b}
echo $(( (1+2) * 3 ))
echo $(( (1) + (2) ))
echo $(case x in x) echo y;; esac)
echo $(case x in (x) echo y;; esac)
echo $( (echo a) )
#{
echo $(# comment
id)
#}
echo `echo a # b`
echo "a `echo "b"` c"
echo x | tee >(cat) | cat
a=1; b=2
echo a;
echo a &
#{
ls |
grep x
#}
#{
ls &&
echo y
#}
#{
ls ||

echo y
#}
{ echo; } > x
( echo ) 2> y
while :; do :; done > log
if :; then :; fi >> log
case x in x) ;; esac > log
echo $((x[$(id)]))
echo "$((1))"
trap 'echo bye' EXIT
echo @x
alias ll=ls
shopt -s extglob
PATH=$PATH:/x cmd
x=`id` y
echo ${x//\//x}
echo "${x//"/"/x}"
\rm -f x
'rm' x
r''m
$'rm'
"rm"
echo x > "/etc/hosts"
$cmd x
eval 'ls x'
sh -c 'ls x'
kubectl get pods
echo a\
b
echo "a\
b"
echo 'a\
b'
echo $(echo a\
b)
#{
echo a \
\
b
#}
echo $'\x41' $'\101' $'\u0041' $'\cA' $'\e'
echo ${x:-$'\''}
[[ $'\x41' == "A" ]]
for x in $(ls); do echo "$x"; done
echo $(( 1 ? 2 : 3 ))
echo ${x[@]} ${x[*]} ${!x[@]}
echo "${x[@]:1}"
a=$(( 2 ** 3 ))
x=${y:-$(date)} z
echo $((16#ff))
echo ${x%%$(y)}
echo `echo $(id)`
echo $(echo `id`)
cmd 3>&1 1>&2 2>&3
cmd 2>&1 >/dev/null
cmd >/dev/null 2>&1 &
cmd &>/dev/null </dev/null
{ cmd; } 2>&1 | tee log
(cmd) >out 2>&1
exec 3>&-
exec >log
exec 2>>err
read -r x <<< "$y"
while IFS= read -r line; do echo "$line"; done <<< "$(cat f)"
echo "a"'b'$'c'$"d"e
echo "${x}"'${y}'
echo "$(echo "$(echo "$(id)")")"
echo "$( case x in x) echo;; esac )"
echo "${x#"$y"}"
echo ${x:-a}}
echo {a..z}
x=(); x+=("a b")
declare -A m=([a]=1 ["b c"]=2)
echo ${m[a]} ${m["b c"]}
i=0; (( i++ )); let i++
test -f x && [ -d y ]
[ "$x" = "y" ]
echo -- -n -e
git log --oneline | head -n 5
kubectl get pods -o jsonpath='{.items[*].metadata.name}'
curl -s "https://example.com/?a=1&b=2" | jq '.x'
find . -name '*.c' -exec grep -l x {} \;
awk '{print $1}' f | sort | uniq -c
sed -e 's/a/b/g' -i f
printf '%s\n' "$@"
xargs -0 -n1 echo < list
env A=1 B=2 cmd
nohup cmd > log 2>&1 &
sudo -u nobody id
ssh host 'ls -l'
tar -C /tmp -xzf x.tgz
#{
if [ -f x ]; then
  echo yes
else
  echo no
fi
#}
#{
for f in *.txt; do
  wc -l "$f"
done | sort -n
#}
#{
while read -r a b; do
  echo "$a"
done <<EOF
1 2
3 4
EOF
#}
#{
f() {
  local x=$1
  echo "$x"
}
f a
#}
#{
case "$1" in
  start) echo start ;;
  stop|halt) echo stop ;;
  *) echo usage; exit 1 ;;
esac
#}
#{
set -euo pipefail
trap 'echo err' ERR
main() { :; }
main "$@"
#}
#{
cat <<-'X' | sed 's/a/b/'
	line $x
	X
#}
#{
x=$(
  ls |
  grep y
)
#}
#{
cat <<EOF1; cat <<EOF2
one
EOF1
two
EOF2
#}
#{
echo `cat <<EOF
x
EOF
`
#}
#{
cat <<EOF
$(cat <<INNER
deep
INNER
)
EOF
#}
