#!/bin/sh
# Runs Debian's testssl.sh against a private tern on loopback: the STARTTLS
# port (submission) and the implicit-TLS port (smtps). Fails if testssl
# reports any finding of severity HIGH or CRITICAL.
#   scripts/testssl-check.sh [path/to/tern]
set -eu
TERN=${1:-./build/tern}
command -v testssl >/dev/null || { echo "testssl.sh is not installed (scripts/deps.sh)" >&2; exit 2; }
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
sub=$(free_port); smtps=$(free_port)
# A test CA and a server certificate shaped like a real one (a year's
# validity, SAN, CRL distribution point), so testssl judges the server's TLS
# set-up and not the shortcuts of a throw-away certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=tern test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=mx.test \
    -keyout "$dir/key.pem" -out "$dir/req.pem" 2>/dev/null
printf 'subjectAltName=DNS:mx.test\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\ncrlDistributionPoints=URI:http://ca.mx.test/crl.pem\n' > "$dir/ext"
openssl x509 -req -in "$dir/req.pem" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 365 -extfile "$dir/ext" -out "$dir/leaf.pem" 2>/dev/null
cat "$dir/leaf.pem" "$dir/ca.pem" > "$dir/cert.pem"
cat > "$dir/tern.conf" <<CONF
hostname = mx.test
listen = 127.0.0.1:$sub submission
listen = 127.0.0.1:$smtps smtps
tls_cert = cert.pem
tls_key = key.pem
spool_dir = $dir/spool
CONF
"$TERN" serve -c "$dir/tern.conf" 2>"$dir/tern.log" &
pid=$!
sleep 1
status=0
for target in "--starttls smtp mx.test:$sub" "mx.test:$smtps"; do
    echo "== testssl $target"
    # shellcheck disable=SC2086
    testssl --quiet --color 0 --warnings off --severity HIGH --jsonfile "$dir/out.json" \
        --ip 127.0.0.1 --add-ca "$dir/ca.pem" $target > "$dir/out.txt" 2>&1 || true
    grep -E "^ (SSLv|TLS |Strong|Forward|Heartbleed|CCS|Ticketbleed|ROBOT|Secure Rene|CRIME|BREACH|POODLE|SWEET32|FREAK|DROWN|LOGJAM|BEAST|LUCKY13|RC4|Overall Grade|Grade cap)" "$dir/out.txt" | sed 's/  */ /g' || true
    findings=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("\n".join("%s %s: %s" % (f["severity"], f["id"], f["finding"]) for f in d if f.get("severity") in ("HIGH","CRITICAL")))' "$dir/out.json")
    rm -f "$dir/out.json"
    if [ -n "$findings" ]; then
        echo "HIGH/CRITICAL findings:"; echo "$findings"; status=1
    else
        echo "no HIGH or CRITICAL finding"
    fi
done
exit $status
