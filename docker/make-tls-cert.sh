#!/usr/bin/env bash
# A demo certificate authority and a server certificate signed by it, for TLS.
# Usage: docker/make-tls-cert.sh [DIR]    (default: tls/)
#   DIR/ca.crt       give clients this:  peerchat-client --ca-file DIR/ca.crt
#   DIR/server.crt   and DIR/server.key: peerchat-server --tls-cert ... --tls-key ...
# The server certificate names localhost, 127.0.0.1 and `server` (the compose service).
# Keys are made here, on this machine, and never committed (tls/ is ignored by git).
# The server key is readable by all (0644) so the image's unprivileged user can read it
# through a bind mount: fine for a demo, not for production.
set -euo pipefail
DIR="${1:-tls}"
DAYS="${DAYS:-825}"
mkdir -p "$DIR"
cd "$DIR"
command -v openssl >/dev/null || { echo "make-tls-cert: openssl is needed (apt-get install openssl)" >&2; exit 1; }

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$DAYS" \
  -subj "/CN=peerchat demo CA" -keyout ca.key -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=peerchat server" \
  -keyout server.key -out server.csr 2>/dev/null
printf '%s\n' "subjectAltName=DNS:localhost,DNS:server,IP:127.0.0.1" \
  "extendedKeyUsage=serverAuth" "basicConstraints=CA:FALSE" > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days "$DAYS" \
  -sha256 -extfile server.ext -out server.crt 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 0600 ca.key
chmod 0644 server.key server.crt ca.crt
echo "make-tls-cert: wrote $DIR/ca.crt, $DIR/server.crt, $DIR/server.key" >&2
