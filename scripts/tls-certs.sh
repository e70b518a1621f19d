#!/bin/sh
# Makes a private CA and certificates signed by it, with the openssl command (docs/tls.md).
#
#   scripts/tls-certs.sh DIR                     the CA only: DIR/ca.pem, DIR/ca-key.pem
#   scripts/tls-certs.sh DIR NAME [SAN ...]      also DIR/NAME.pem and DIR/NAME-key.pem, signed by
#                                                the CA in DIR (made first if missing)
#
# SANs are openssl's form (IP:10.0.0.5, DNS:brick-0.abaca); default IP:127.0.0.1,IP:::1,DNS:localhost.
# Every certificate is good for both ends (serverAuth, clientAuth): a share server is a server to
# clients and a client of the bricks. Keys are EC P-256, certificates last 825 days, the CA 10 years.
# An existing CA is kept; an existing NAME is replaced.
set -eu
if [ $# -lt 1 ]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
dir=$1
shift
mkdir -p "$dir"
umask 077
if [ ! -f "$dir/ca.pem" ]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" -days 3650 -subj "/CN=abaca cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
  chmod 644 "$dir/ca.pem"
fi
[ $# -ge 1 ] || exit 0
name=$1
shift
case $name in */* | .* | '') echo "tls-certs.sh: bad name '$name'" >&2; exit 2 ;; esac
sans=
for s in "$@"; do sans="${sans:+$sans,}$s"; done
[ -n "$sans" ] || sans="IP:127.0.0.1,IP:::1,DNS:localhost"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
  -keyout "$dir/$name-key.pem" -out "$dir/$name.pem" -days 825 -subj "/CN=$name" \
  -addext "subjectAltName=$sans" -addext "basicConstraints=critical,CA:FALSE" \
  -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
  -addext "extendedKeyUsage=serverAuth,clientAuth" 2>/dev/null
chmod 644 "$dir/$name.pem"
echo "$dir/$name.pem (key $dir/$name-key.pem), signed by $dir/ca.pem, for $sans"
