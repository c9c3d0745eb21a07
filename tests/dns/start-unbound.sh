#!/bin/sh
# Starts the test DNS server (Debian's unbound, zone.conf.in beside this
# script) on 127.0.0.1:PORT, with its config, log and pid file in DIR.
# Returns once the server answers; stop it with `kill $(cat DIR/unbound.pid)`.
#
# usage: tests/dns/start-unbound.sh PORT DIR [WATCH_PID]
# With WATCH_PID, the server is also stopped when that process ends, so a
# test that crashes leaves no server behind.
# Exits 1 (never "skipped") when unbound is missing: scripts/deps.sh
# installs it.
set -eu

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 PORT DIR [WATCH_PID]" >&2
    exit 2
fi
port=$1
dir=$2
watch=${3:-}
case $port in
    ''|*[!0-9]*) echo "$0: PORT must be a number" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)

unbound=$(command -v unbound || true)
[ -z "$unbound" ] && [ -x /usr/sbin/unbound ] && unbound=/usr/sbin/unbound
if [ -z "$unbound" ]; then
    echo "$0: unbound is not installed (scripts/deps.sh installs it)" >&2
    exit 1
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$dir|g" "$here/zone.conf.in" >"$dir/unbound.conf"
rm -f "$dir/unbound.pid"
: >"$dir/unbound.log"

"$unbound" -d -c "$dir/unbound.conf" >>"$dir/unbound.log" 2>&1 &
pid=$!
echo "$pid" >"$dir/unbound.pid"

if [ -n "$watch" ]; then
    (
        trap '' HUP
        while kill -0 "$watch" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do
            sleep 1
        done
        kill "$pid" 2>/dev/null
    ) >/dev/null 2>&1 </dev/null &
fi

# "start of service" is logged once the listening sockets are open.
i=0
while [ $i -lt 100 ]; do
    if grep -q "start of service" "$dir/unbound.log"; then
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "$0: unbound exited; its log ($dir/unbound.log):" >&2
        cat "$dir/unbound.log" >&2
        exit 1
    fi
    sleep 0.1
    i=$((i + 1))
done
echo "$0: unbound did not start within 10 s; its log ($dir/unbound.log):" >&2
cat "$dir/unbound.log" >&2
kill "$pid" 2>/dev/null
exit 1
