#!/bin/sh
# Installs every build and test dependency of tern from Debian's packages.
# Idempotent and quiet: does nothing when everything is present.
# Arguments name extra packages to install the same way (bench/run.sh --tls
# asks for Cyrus SASL's tools this way).
set -eu

PKGS="build-essential cmake pkg-config clang libclang-rt-dev
      libssl-dev libunbound-dev zlib1g-dev libcrypt-dev
      python3 python3-pytest python3-pytest-xdist python3-yaml python3-spf swaks libnet-ssleay-perl curl msmtp postfix unbound openssl
      testssl.sh pflogsumm php-cli git-email libmailtools-perl
      python3-dkim python3-nacl opendkim opendkim-tools
      dpkg-dev init-system-helpers adduser systemd groff-base man-db mandoc
      libpsl-dev publicsuffix libxml2-utils python3-authheaders python3-authres $*"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
# Started as root, tern runs as `tern` and delivers as `vmail` (the
# defaults of `user` and `mail_user`); the tests run as root where CI does,
# so those users must exist. A non-root developer's tern never switches.
ensure_users() {
    [ "$(id -u)" -eq 0 ] || return 0
    for u in tern vmail; do
        getent passwd "$u" >/dev/null && continue
        adduser --system --group --no-create-home --home /nonexistent --quiet "$u"
    done
}

if [ -z "$missing" ]; then
    ensure_users
    exit 0
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Postfix is installed only for its tools (smtp-source, smtp-sink) and as a
# benchmark and test peer with its own config: never configure or start the
# system instance.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    added_policy=1
fi
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
[ "$added_policy" -eq 1 ] && $SUDO rm -f "$policy"
ensure_users
exit 0
