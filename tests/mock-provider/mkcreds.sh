#!/bin/sh
# mkcreds.sh OUTDIR [MOCK_BASE_URL]: test credentials for mock-provider and the senders.
#
# Creates in OUTDIR (existing key files are kept; re-running only fills in what is missing and
# refreshes fcm-service-account.json when MOCK_BASE_URL changed):
#   ca.pem ca.key                 test CA, EC P-256, 10 years
#   server.pem server.key         TLS server certificate for 127.0.0.1, ::1 and localhost
#   apns.p8 apns_pub.pem          APNs token key as Apple ships it (EC P-256, PKCS#8 PEM) + public key
#   apns.json                     {"key_id":"MOCKKEY123","team_id":"MOCKTEAM12"}
#   fcm.key fcm_pub.pem           RSA-2048 service-account key (PKCS#8 PEM) + public key
#   fcm-service-account.json      real-format service account, token_uri = MOCK_BASE_URL/token
#   wns.json                      {"client_id":"ms-app://s-1-15-2-mock","client_secret":"mock-secret"}
# Files holding private keys are mode 0600. Needs the openssl CLI.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 OUTDIR [MOCK_BASE_URL]" >&2
	exit 2
fi
out=$1
base=${2:-https://127.0.0.1:8443}
base=${base%/}
mkdir -p "$out"
cd "$out"
umask 077

# Writes stdin to FILE only when the content differs (keeps timestamps of unchanged files).
put() {
	cat >"$1.tmp.$$"
	if [ -f "$1" ] && cmp -s "$1" "$1.tmp.$$"; then
		rm -f "$1.tmp.$$"
	else
		mv "$1.tmp.$$" "$1"
	fi
}

if [ ! -f ca.key ] || [ ! -f ca.pem ]; then
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
	openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=pushpipe mock test CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out ca.pem 2>/dev/null
	rm -f server.pem # a new CA needs a new server certificate
fi

if [ ! -f server.key ]; then
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key 2>/dev/null
	rm -f server.pem
fi
if [ ! -f server.pem ]; then
	printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost" >server.ext
	openssl req -new -key server.key -subj "/CN=localhost" -out server.csr 2>/dev/null
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
		-extfile server.ext -out server.pem 2>/dev/null
	rm -f server.csr server.ext ca.srl
fi

if [ ! -f apns.p8 ]; then
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out apns.p8 2>/dev/null
	rm -f apns_pub.pem
fi
[ -f apns_pub.pem ] || openssl pkey -in apns.p8 -pubout -out apns_pub.pem 2>/dev/null
[ -f apns.json ] || printf '{"key_id":"MOCKKEY123","team_id":"MOCKTEAM12"}\n' | put apns.json

if [ ! -f fcm.key ]; then
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out fcm.key 2>/dev/null
	rm -f fcm_pub.pem
fi
[ -f fcm_pub.pem ] || openssl pkey -in fcm.key -pubout -out fcm_pub.pem 2>/dev/null
kid=$(openssl pkey -in fcm.key -pubout -outform DER 2>/dev/null | openssl dgst -sha1 -r | cut -c1-40)
pem=$(awk 'BEGIN { ORS = "" } { printf "%s\\n", $0 }' fcm.key)
email=pushpipe-mock@pushpipe-test.iam.gserviceaccount.com
put fcm-service-account.json <<EOF
{
  "type": "service_account",
  "project_id": "pushpipe-test",
  "private_key_id": "$kid",
  "private_key": "$pem",
  "client_email": "$email",
  "client_id": "100000000000000000001",
  "auth_uri": "https://accounts.google.com/o/oauth2/auth",
  "token_uri": "$base/token",
  "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
  "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/pushpipe-mock%40pushpipe-test.iam.gserviceaccount.com",
  "universe_domain": "googleapis.com"
}
EOF

[ -f wns.json ] || printf '{"client_id":"ms-app://s-1-15-2-mock","client_secret":"mock-secret"}\n' | put wns.json
[ -f hms.json ] || printf '{"app_id":"104523987","app_secret":"hms-mock-secret-%s"}\n' "$(openssl rand -hex 8)" | put hms.json

chmod 0600 ca.key server.key apns.p8 fcm.key fcm-service-account.json
chmod 0644 ca.pem server.pem apns_pub.pem apns.json fcm_pub.pem wns.json hms.json
