#!/bin/sh
# tern vs Postfix benchmark: a thin entry for bench.py, with --tls first
# for tls_bench.py, with --relay first for relay_bench.py, with --mailauth
# first for mailauth_bench.py (see bench/README.md).
# Runs from any directory; paths given as arguments are taken relative to the
# caller's working directory, the default tern binary is <repo>/build/tern.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = "--tls" ]; then
    shift
    # Postfix's side of the TLS bench authenticates through Cyrus SASL:
    # saslpasswd2 (sasl2-bin) and the PLAIN/LOGIN modules. Idempotent, quiet.
    "$here/../scripts/deps.sh" sasl2-bin libsasl2-modules
    BENCH_ENTRY="$0 --tls" exec /usr/bin/python3 "$here/tls_bench.py" "$@"
fi
if [ "${1:-}" = "--mailauth" ]; then
    shift
    # Postfix's side of the mail authentication bench: the milters and the
    # policy service operators use (opendkim is in deps.sh's own list);
    # dbconfig-no-thanks keeps opendmarc from pulling in a database client.
    "$here/../scripts/deps.sh" opendmarc dbconfig-no-thanks postfix-policyd-spf-python
    BENCH_ENTRY="$0 --mailauth" exec /usr/bin/python3 "$here/mailauth_bench.py" "$@"
fi
if [ "${1:-}" = "--relay" ]; then
    shift
    BENCH_ENTRY="$0 --relay" exec /usr/bin/python3 "$here/relay_bench.py" "$@"
fi
BENCH_ENTRY=$0 exec /usr/bin/python3 "$here/bench.py" "$@"
