## what bash -n accepts and shparse refuses on purpose (see shparse.h)
#!refuse a backquote's body is parsed only when it runs
echo `if`
#!refuse an unquoted here-document's substitutions are parsed only when the document is used
#{
cat <<EOF
$(if)
EOF
#}
#!refuse a $(( )) that is not arithmetic is a command substitution parsed when it runs
echo $((echo ) (x) )
#!refuse bash takes a bare ]] in [[ for the end of its input and runs nothing
[[ ]]
#!refuse the same
[[ ! ]]
#!refuse the same (bash prints an error, and exits 0)
[[ -f ]]
#!refuse bash takes for's (( without )) for the end of its input and runs nothing
for ((;;) do :; done
