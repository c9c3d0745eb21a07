#!/bin/sh
# Fails when src/ goes back to a bare -1 for an error (docs/design.md,
# "Conventions": 0 or a negative errno, fd or -errno, or NULL). A -1 reads
# as -EPERM through strerror(), so a caller that prints or maps the code
# would tell the operator something false.
#
# usage: tests/lint/check_errno.sh [SRC_DIR]   (default: src/ beside tests/)
#
# What it looks for, in every .c and .h:
#   - "return -1;", and returns of "? 0 : -1" / "? -1 : 0";
#   - an error variable set to -1 (rc, ret, err, res, status = -1;);
#   - a comment that promises -1 ("Returns 0 or -1", "... -1 when ...").
# Allowed exceptions go in ALLOW below as "file:text" with a reason.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/../../src}
[ -d "$src" ] || { echo "check_errno: no directory $src" >&2; exit 2; }

# one "path-under-src:exact line text" per line; why, for each:
#   dkim_key.c: OpenSSL's pem_password_cb contract is a length or -1.
ALLOW='mailauth/dkim_key.c:    return -1; /* an encrypted key cannot be read unattended */'

found=$(cd "$src" && grep -rnE --include='*.c' --include='*.h' \
    -e 'return[[:space:]]+-1[[:space:]]*;' \
    -e 'return[^;]*\?[[:space:]]*0[[:space:]]*:[[:space:]]*-1[[:space:]]*;' \
    -e 'return[^;]*\?[[:space:]]*-1[[:space:]]*:[[:space:]]*0[[:space:]]*;' \
    -e '\b(rc|ret|err|res|status)[[:space:]]*=[[:space:]]*-1[[:space:]]*;' \
    -e '^[[:space:]]*(/\*|\*).*[Rr]eturns?[^.;]*[^[:alnum:]_(]-1([^[:digit:]]|$)' \
    -e '^[[:space:]]*\*[[:space:]]*-1 (when|on|if|for|after|with|otherwise)\b' \
    . | sed 's|^\./||')
if [ -n "$ALLOW" ] && [ -n "$found" ]; then
    found=$(printf '%s\n' "$found" | while IFS= read -r line; do
        file=${line%%:*}
        text=${line#*:*:}
        printf '%s\n' "$ALLOW" | grep -qxF "$file:$text" || printf '%s\n' "$line"
    done)
fi
if [ -n "$found" ]; then
    echo "check_errno: a bare -1 where 0 / -errno is the rule (docs/design.md, Conventions):" >&2
    printf '%s\n' "$found" >&2
    exit 1
fi
echo "check_errno: src/ returns no bare -1"
