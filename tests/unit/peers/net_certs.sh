#!/usr/bin/env bash
# Throwaway certificates for tests/unit/test_netconn.c, made with the openssl CLI:
#
#   net_certs.sh DIR ->
#     DIR/ca.pem                  the test CA (the client trusts it)
#     DIR/leaf.pem, leaf.key      localhost and 127.0.0.1, from the CA
#     DIR/wrong.pem, wrong.key    other.example only, from the CA (a host name mismatch)
#     DIR/expired.pem, expired.key  localhost and 127.0.0.1, from the CA, valid in 2020 only
#     DIR/untrusted.pem, untrusted.key  localhost and 127.0.0.1, from a CA nobody trusts
#
# EC P-256 keys. Quiet on success; openssl's output is shown on failure.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
mkdir -p "$dir"
cd "$dir"
log=$dir/openssl.log
: >"$log"

run() {
    if ! "$@" >>"$log" 2>&1; then
        echo "net_certs: failed: $*" >&2
        cat "$log" >&2
        exit 1
    fi
}

ca() { # name CN
    run openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"
    run openssl req -x509 -new -key "$1.key" -sha256 -days 30 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" -out "$1.pem"
}

ext() { # SAN
    cat <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$1
authorityKeyIdentifier=keyid
subjectKeyIdentifier=hash
EXT
}

leaf() { # name CA SAN
    run openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"
    run openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
    ext "$3" >"$1.ext"
    run openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -set_serial "0x$(openssl rand -hex 8)" \
        -days 30 -sha256 -extfile "$1.ext" -out "$1.pem"
}

ca ca "netconn test CA"
ca other-ca "a CA nobody trusts"
leaf leaf ca "DNS:localhost,IP:127.0.0.1"
leaf wrong ca "DNS:other.example"
leaf untrusted other-ca "DNS:localhost,IP:127.0.0.1"

# openssl x509 cannot backdate a certificate; openssl ca takes exact dates.
run openssl ecparam -name prime256v1 -genkey -noout -out expired.key
run openssl req -new -key expired.key -subj "/CN=expired" -out expired.csr
ext "DNS:localhost,IP:127.0.0.1" >expired.ext
mkdir -p ca-db
: >ca-db/index.txt
cat >ca-db/ca.cnf <<CNF
[ ca ]
default_ca = test
[ test ]
database = $dir/ca-db/index.txt
new_certs_dir = $dir/ca-db
serial = $dir/ca-db/serial
default_md = sha256
policy = any
unique_subject = no
[ any ]
commonName = supplied
CNF
echo 01 >ca-db/serial
run openssl ca -batch -config ca-db/ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
    -startdate 20200101000000Z -enddate 20200102000000Z -extfile expired.ext -notext \
    -out expired.pem
