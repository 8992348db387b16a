#!/bin/bash
# gen-certs.sh OUTDIR — TLS credentials for migd's tests, in QEMU's
# directory layout (tls-creds-x509 dir=..., tls-creds-psk dir=...), made
# with the openssl command line. EC P-256 keys (fast to make and to use).
#   server/        ca-cert.pem server-cert.pem server-key.pem
#                  (SAN DNS:localhost, IP:127.0.0.1)
#   client/        ca-cert.pem client-cert.pem client-key.pem (CN=client)
#   client-otherca/ the client's files but trusting another CA
#   server-otherca/ the server's files but trusting another CA
#   server-expired/ a server certificate that expired in 2020
#   client-expired/ a client certificate that expired in 2020
#   psk/keys.psk   qemu:KEY and alice:KEY2
#   psk-wrong/keys.psk  qemu:another key
# The client's distinguished name (for authz-simple) is
# CN=client,O=migd test,C=GB.
set -euo pipefail
out=${1:?usage: gen-certs.sh OUTDIR}
mkdir -p "$out"
cd "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	-out "$1" 2>/dev/null; }

make_ca() { # NAME
	key "$tmp/$1-key.pem"
	openssl req -x509 -new -key "$tmp/$1-key.pem" -days 3650 \
		-subj "/C=GB/O=migd test/CN=$1" -out "$tmp/$1-cert.pem" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign"
}

# sign CA NAME SUBJ EXT [STARTDATE ENDDATE]
sign() {
	local ca=$1 name=$2 subj=$3 ext=$4 start=${5:-} end=${6:-}
	key "$tmp/$name-key.pem"
	openssl req -new -key "$tmp/$name-key.pem" -subj "$subj" \
		-out "$tmp/$name.csr"
	printf '%s\n' "$ext" >"$tmp/$name.ext"
	mkdir -p "$tmp/db-$name"
	: >"$tmp/db-$name/index.txt"
	cat >"$tmp/$name.cnf" <<EOF
[ca]
default_ca = c
[c]
database = $tmp/db-$name/index.txt
new_certs_dir = $tmp/db-$name
serial = $tmp/db-$name/serial
default_md = sha256
policy = p
copy_extensions = none
unique_subject = no
preserve = yes
[p]
countryName = optional
organizationName = optional
commonName = supplied
EOF
	openssl rand -hex 8 >"$tmp/db-$name/serial"
	local dates=(-days 3650)
	[ -n "$start" ] && dates=(-startdate "$start" -enddate "$end")
	openssl ca -batch -notext -config "$tmp/$name.cnf" \
		-cert "$tmp/$ca-cert.pem" -keyfile "$tmp/$ca-key.pem" \
		-in "$tmp/$name.csr" -out "$tmp/$name-cert.pem" \
		-extfile "$tmp/$name.ext" "${dates[@]}" 2>/dev/null
}

make_ca ca
make_ca otherca
srv_ext="basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
cli_ext="basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
sign ca server "/C=GB/O=migd test/CN=localhost" "$srv_ext"
sign ca client "/C=GB/O=migd test/CN=client" "$cli_ext"
sign ca server-old "/C=GB/O=migd test/CN=localhost" "$srv_ext" \
	20200101000000Z 20200102000000Z
sign ca client-old "/C=GB/O=migd test/CN=client" "$cli_ext" \
	20200101000000Z 20200102000000Z

put() { # DIR CA ROLE NAME
	mkdir -p "$1"
	cp "$tmp/$2-cert.pem" "$1/ca-cert.pem"
	cp "$tmp/$4-cert.pem" "$1/$3-cert.pem"
	cp "$tmp/$4-key.pem" "$1/$3-key.pem"
}
put server ca server server
put client ca client client
put server-otherca otherca server server
put client-otherca otherca client client
put server-expired ca server server-old
put client-expired ca client client-old

mkdir -p psk psk-wrong
printf 'qemu:%s\nalice:%s\n' "$(openssl rand -hex 32)" \
	"$(openssl rand -hex 32)" >psk/keys.psk
printf 'qemu:%s\n' "$(openssl rand -hex 32)" >psk-wrong/keys.psk
chmod 600 psk/keys.psk psk-wrong/keys.psk ./*/*-key.pem
