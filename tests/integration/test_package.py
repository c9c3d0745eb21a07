"""Installation and packaging (issue 5): `cmake --install` / `make install`, `make deb`, the
maintainer scripts run for real by dpkg in a throwaway root, the systemd unit, the man pages.

Nothing is built here: the tree is installed from the build directory of TERN_BIN (so a shared
build directory is never rebuilt), and the package is made from it by packaging/build-deb.sh.

The throwaway root: a directory with a minimal /etc (root only), an empty dpkg database, and
the host's /usr mounted as the lower layer of an overlay whose upper layer is a temporary
directory, inside a private mount namespace (`unshare -m`). `dpkg --root` unpacks the package
there and runs its maintainer scripts chrooted into it, so adduser, chown and
deb-systemd-helper really run, on the throwaway root's files only; the host is not touched.
Needs root and overlayfs (both present where `make test` runs).
"""
import gzip
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from ternlib import TERN_BIN, make_cert

SRC = Path(__file__).resolve().parents[2]
BIN = Path(os.path.abspath(TERN_BIN))
BUILD = BIN.parent
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# What `cmake --install` puts under the prefix: path -> link target (None for a file).
INSTALLED = {
    "sbin/tern": None,
    "sbin/sendmail": "tern",
    "bin/mailq": "../sbin/tern",
    "bin/newaliases": "../sbin/tern",
    "share/man/man8/tern.8": None,
    "share/man/man5/tern.conf.5": None,
    "lib/systemd/system/tern.service": None,
    "lib/systemd/system/tern-dmarc-report.service": None,
    "lib/systemd/system/tern-dmarc-report.timer": None,
    "share/doc/tern/tern.conf.example": None,
}

# Every file and link of the .deb (directories aside).
DEB_FILES = {
    "etc/tern/tern.conf", "etc/tern/aliases", "lib/systemd/system/tern.service", "usr/sbin/tern",
    "lib/systemd/system/tern-dmarc-report.service", "lib/systemd/system/tern-dmarc-report.timer",
    "usr/share/man/man8/tern.8.gz", "usr/share/man/man5/tern.conf.5.gz",
    "usr/share/doc/tern/copyright", "usr/share/doc/tern/changelog.Debian.gz",
    "usr/share/doc/tern/tern.conf.example",
}
DEB_LINKS = {"usr/sbin/sendmail": "tern", "usr/bin/mailq": "../sbin/tern", "usr/bin/newaliases": "../sbin/tern"}

# Keys that tern.conf(5) must document besides those of config_parse.c and docs/config.md.
EXTRA_KEYS = ["user", "mail_user", "control_socket", "shutdown_timeout", "metrics_listen", "log_format"]


def run(args, timeout=120, **kw):
    """Runs a command; returns (returncode, stdout + stderr as text)."""
    p = subprocess.run([str(a) for a in args], capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, **kw)
    return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")


def check(args, **kw):
    rc, out = run(args, **kw)
    assert rc == 0, "%s -> %d\n%s" % (" ".join(map(str, args)), rc, out)
    return out


def project_version():
    cache = (BUILD / "CMakeCache.txt").read_text()
    m = re.search(r"^CMAKE_PROJECT_VERSION:STATIC=(\S+)$", cache, re.M)
    assert m, "no project version in %s" % (BUILD / "CMakeCache.txt")
    return m.group(1)


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


# --------------------------------------------------------------------------- make install


def cmake_install(destdir, prefix):
    env = dict(os.environ, DESTDIR=str(destdir))
    return check(["cmake", "--install", BUILD, "--prefix", prefix], env=env)


@pytest.fixture(scope="module")
def usr_tree(tmp_path_factory):
    destdir = tmp_path_factory.mktemp("destdir")
    cmake_install(destdir, "/usr")
    return destdir


def test_install_puts_every_file_and_link_under_destdir_prefix(usr_tree):
    root = usr_tree / "usr"
    for rel, target in INSTALLED.items():
        p = root / rel
        assert os.path.lexists(p), "not installed: /usr/%s" % rel
        if target is None:
            assert p.is_file() and not p.is_symlink(), rel
        else:
            assert p.is_symlink(), "%s is not a symlink" % rel
            assert os.readlink(p) == target, (rel, os.readlink(p))
            assert p.resolve() == (root / "sbin/tern").resolve(), rel
    assert mode(root / "sbin/tern") == 0o755
    for rel in ("share/man/man8/tern.8", "share/man/man5/tern.conf.5", "lib/systemd/system/tern.service",
                "lib/systemd/system/tern-dmarc-report.service", "lib/systemd/system/tern-dmarc-report.timer",
                "share/doc/tern/tern.conf.example"):
        assert mode(root / rel) == 0o644, rel
    # Nothing outside the prefix, and nothing the list does not name.
    assert sorted(p.name for p in usr_tree.iterdir()) == ["usr"]
    found = {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir() or p.is_symlink()}
    assert found == set(INSTALLED), found ^ set(INSTALLED)
    assert (root / "share/doc/tern/tern.conf.example").read_bytes() == (SRC / "packaging/tern.conf").read_bytes()


def test_installed_binary_runs(usr_tree):
    out = check([usr_tree / "usr/sbin/tern", "version"])
    assert out.strip() == "tern " + project_version()


def test_installed_links_dispatch_to_sendmail(usr_tree):
    """Called as sendmail/mailq/newaliases, tern runs its sendmail command, never its own CLI."""
    for link, args in (("sbin/sendmail", ["-bi"]), ("bin/mailq", []), ("bin/newaliases", [])):
        rc, out = run([usr_tree / "usr" / link] + args, timeout=30, cwd=usr_tree)
        if "has no sendmail command" in out:
            pytest.skip("this build of tern has no `tern sendmail` yet: %s" % out.strip())
        assert "usage: tern COMMAND" not in out and "unknown command" not in out, (link, out)
    rc, out = run([usr_tree / "usr/bin/newaliases"], timeout=30, cwd=usr_tree)
    assert rc == 0, out


def test_unit_names_the_binary_under_the_prefix(tmp_path):
    cmake_install(tmp_path, "/opt/tern")
    unit = (tmp_path / "opt/tern/lib/systemd/system/tern.service").read_text()
    assert "ExecStart=/opt/tern/sbin/tern serve -c /etc/tern/tern.conf\n" in unit
    assert "ExecStartPre=/opt/tern/sbin/tern check-config -c /etc/tern/tern.conf\n" in unit
    assert "/usr/sbin/tern" not in unit
    report = (tmp_path / "opt/tern/lib/systemd/system/tern-dmarc-report.service").read_text()
    assert "ExecStart=/opt/tern/sbin/tern dmarc report -c /etc/tern/tern.conf\n" in report
    assert "/usr/sbin/tern" not in report
    assert os.readlink(tmp_path / "opt/tern/bin/mailq") == "../sbin/tern"


def test_make_install_and_deb_targets():
    """The Makefile hands PREFIX and DESTDIR to cmake --install, and `make deb` runs
    build-deb.sh on build/ (dry runs: nothing is built)."""
    out = check(["make", "-n", "-C", SRC, "install", "DESTDIR=/tmp/x y", "PREFIX=/opt/t"])
    assert 'DESTDIR="/tmp/x y" cmake --install build --prefix "/opt/t"' in out, out
    out = check(["make", "-n", "-C", SRC, "install"])
    assert 'cmake --install build --prefix "/usr/local"' in out, out
    out = check(["make", "-n", "-C", SRC, "deb"])
    assert "./packaging/build-deb.sh build build-deb" in out, out


# --------------------------------------------------------------------------- the systemd unit


def test_unit_settings():
    unit = (SRC / "packaging/tern.service").read_text()
    settings = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            settings.setdefault(k, []).append(v)
    assert settings["ExecStartPre"] == ["/usr/sbin/tern check-config -c /etc/tern/tern.conf"]
    assert settings["ExecStart"] == ["/usr/sbin/tern serve -c /etc/tern/tern.conf"]
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert settings["KillSignal"] == ["SIGTERM"]
    # SIGTERM to the supervisor only; it stops its children itself.
    assert settings["KillMode"] == ["mixed"]
    assert settings["Restart"] == ["on-failure"]
    assert "network-online.target" in settings["After"][0]
    # Longer than the default shutdown_timeout (30 s), not absurdly so.
    m = re.fullmatch(r"(\d+)s?", settings["TimeoutStopSec"][0])
    assert m and 30 < int(m.group(1)) <= 90, settings["TimeoutStopSec"]
    # What a root-started daemon that binds port 25, chroots and setuid()s needs.
    caps = settings["CapabilityBoundingSet"][0].split()
    for cap in ("CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_CHROOT"):
        assert cap in caps, cap
    assert "chroot" in settings["SystemCallFilter"]
    assert "User" not in settings  # tern starts as root and drops privileges itself
    for rw in ("/var/spool/tern", "/var/mail/vhosts"):
        assert rw in settings["ReadWritePaths"][0]


def unit_settings(name):
    settings = {}
    for line in (SRC / "packaging" / name).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            settings.setdefault(k, []).append(v)
    return settings


def test_dmarc_report_units():
    """The daily DMARC aggregate reports: a oneshot as the daemon's user (it only reads the
    spool's rows and writes into pickup/), started after the UTC day it reports on."""
    svc = unit_settings("tern-dmarc-report.service")
    assert svc["ExecStart"] == ["/usr/sbin/tern dmarc report -c /etc/tern/tern.conf"]
    assert svc["Type"] == ["oneshot"]
    assert svc["User"] == ["tern"] and svc["Group"] == ["tern"]
    assert svc["CapabilityBoundingSet"] == [""]
    assert svc["ReadWritePaths"] == ["/var/spool/tern"]
    assert "[Install]" not in (SRC / "packaging/tern-dmarc-report.service").read_text()
    timer = unit_settings("tern-dmarc-report.timer")
    assert timer["OnCalendar"] == ["*-*-* 01:00:00 UTC"]
    assert timer["Persistent"] == ["true"]
    assert timer["WantedBy"] == ["timers.target"]


# --------------------------------------------------------------------------- make deb


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    out = tmp_path_factory.mktemp("deb")
    path = check([SRC / "packaging/build-deb.sh", BUILD, out], timeout=300).strip().splitlines()[-1]
    return Path(path)


def deb_listing(deb):
    """dpkg-deb -c: path -> (mode string, owner, link target or None)."""
    entries = {}
    for line in check(["dpkg-deb", "-c", deb]).splitlines():
        m = re.match(r"^(\S+) (\S+)\s+\d+ \S+ \S+ \./(.*?)(?: -> (.*))?$", line)
        assert m, line
        perms, owner, path, target = m.groups()
        entries[path.rstrip("/")] = (perms, owner, target)
    return entries


def test_deb_name_and_control_fields(deb):
    version = project_version()
    arch = check(["dpkg", "--print-architecture"]).strip()
    assert deb.name == "tern_%s_%s.deb" % (version, arch)
    f = lambda field: check(["dpkg-deb", "-f", deb, field]).strip()
    assert f("Package") == "tern"
    assert f("Version") == version
    assert f("Architecture") == arch
    assert f("Section") == "mail"
    assert f("Priority") == "optional"
    assert re.match(r"^.+ <[^@\s]+@[^@\s]+>$", f("Maintainer")), f("Maintainer")
    for field in ("Provides", "Conflicts", "Replaces"):
        assert f(field) == "mail-transport-agent", field
    depends = {d.strip().split(" ")[0] for d in f("Depends").split(",")}
    for pkg in ("libc6", "libssl3", "libunbound8", "zlib1g", "libcrypt1", "adduser", "ssl-cert"):
        assert pkg in depends, (pkg, depends)
    desc = f("Description").splitlines()
    assert desc[0] and len(desc[0]) < 80 and len(desc) > 1
    assert int(f("Installed-Size")) > 0


def test_deb_contents(deb):
    entries = deb_listing(deb)
    assert all(owner == "root/root" for _, owner, _ in entries.values()), entries
    files = {p for p, (perms, _, _) in entries.items() if perms.startswith("-")}
    links = {p: t for p, (perms, _, t) in entries.items() if perms.startswith("l")}
    assert files == DEB_FILES, files ^ DEB_FILES
    assert links == DEB_LINKS
    for p, (perms, _, _) in entries.items():
        if perms.startswith("d"):
            assert perms == "drwxr-xr-x", (p, perms)
        elif p == "usr/sbin/tern":
            assert perms == "-rwxr-xr-x"
        elif perms.startswith("-"):
            assert perms == "-rw-r--r--", (p, perms)


def test_deb_control_files_and_scripts(deb, tmp_path):
    ctrl = tmp_path / "DEBIAN"
    check(["dpkg-deb", "-e", deb, ctrl])
    assert sorted(p.name for p in ctrl.iterdir()) == ["conffiles", "control", "md5sums", "postinst", "postrm", "prerm"]
    assert (ctrl / "conffiles").read_text().split() == ["/etc/tern/tern.conf", "/etc/tern/aliases"]
    for script in ("postinst", "prerm", "postrm"):
        p = ctrl / script
        assert mode(p) == 0o755, script
        text = p.read_text()
        assert text.startswith("#!/bin/sh\n"), script
        assert re.search(r"^set -e$", text, re.M), script
        check(["sh", "-n", p])
        check(["dash", "-n", p])  # /bin/sh on Debian; POSIX, no bashisms it would reject
        # Every systemd call is guarded (the scripts run in chroots and images too).
        for line in text.splitlines():
            if re.search(r"\b(systemctl|deb-systemd-invoke)\b", line) and "command -v" not in line:
                assert "|| true" in line, (script, line)
    code = [l for l in (ctrl / "postrm").read_text().splitlines() if not l.lstrip().startswith("#")]
    assert not any("/var/mail" in l for l in code), code  # the users' mail is never removed


def test_deb_extracts_and_runs(deb, tmp_path):
    check(["dpkg-deb", "-x", deb, tmp_path])
    out = check([tmp_path / "usr/sbin/tern", "version"])
    assert out.strip() == "tern " + project_version()
    # md5sums cover every file and match
    ctrl = tmp_path / "DEBIAN"
    check(["dpkg-deb", "-e", deb, ctrl])
    sums = (ctrl / "md5sums").read_text().splitlines()
    assert {line.split(None, 1)[1] for line in sums} == DEB_FILES
    check(["md5sum", "--quiet", "-c", ctrl / "md5sums"], cwd=tmp_path)
    with gzip.open(tmp_path / "usr/share/doc/tern/changelog.Debian.gz", "rt") as f:
        assert f.readline().startswith("tern (%s) " % project_version())
    assert (tmp_path / "etc/tern/tern.conf").read_bytes() == (SRC / "packaging/tern.conf").read_bytes()
    assert "postmaster: root" in (tmp_path / "etc/tern/aliases").read_text()


def test_packaged_config(deb, tmp_path):
    """The production default: public listeners, snakeoil certificate, Debian paths, syslog."""
    check(["dpkg-deb", "-x", deb, tmp_path])
    conf = {}
    for line in (tmp_path / "etc/tern/tern.conf").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            k, v = (s.strip() for s in line.split("=", 1))
            conf.setdefault(k, []).append(v)
    assert conf["listen"] == ["0.0.0.0:25 mx", "0.0.0.0:587 submission", "0.0.0.0:465 smtps"]
    assert conf["tls_cert"] == ["/etc/ssl/certs/ssl-cert-snakeoil.pem"]
    assert conf["tls_key"] == ["/etc/ssl/private/ssl-cert-snakeoil.key"]
    assert conf["spool_dir"] == ["/var/spool/tern"]
    assert conf["maildir"] == ["/var/mail/vhosts/%d/%u/Maildir"]
    assert conf["users_file"] == ["/etc/tern/users"]
    assert conf["aliases_file"] == ["/etc/tern/aliases"]
    assert conf["log"] == ["syslog"]


# --------------------------------------------------------------------------- a throwaway root


class ThrowawayRoot:
    """A root for `dpkg --root` whose /usr is an overlay on the host's (see the module doc)."""

    def __init__(self, base):
        self.base = base
        self.root = base / "root"
        self.upper = base / "usr-upper"
        for d in ("usr", "dev", "proc", "tmp", "etc", "run", "var/log", "var/cache/debconf", "var/lib/dpkg/info",
                  "var/lib/dpkg/updates", "var/lib/dpkg/triggers"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").chmod(0o1777)
        self.upper.mkdir()
        (base / "usr-work").mkdir()
        for f in ("var/lib/dpkg/status", "var/lib/dpkg/available"):
            (self.root / f).touch()
        for d in ("bin", "sbin", "lib", "lib64"):
            if os.path.islink("/" + d):
                (self.root / d).symlink_to("usr/" + d)
        etc = self.root / "etc"
        (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
        (etc / "group").write_text("root:x:0:\nssl-cert:x:990:\nnogroup:x:65534:\n")
        (etc / "gshadow").write_text("root:*::\nssl-cert:!::\nnogroup:*::\n")
        for f in ("shadow", "gshadow"):
            (etc / f).chmod(0o640)
        for f in ("adduser.conf", "login.defs", "nsswitch.conf"):
            if os.path.exists("/etc/" + f):
                shutil.copy("/etc/" + f, etc / f)

    def run(self, *args, timeout=180):
        """Runs args in a private mount namespace with the overlay, /dev and /proc (which
        sanitizer builds need) mounted."""
        script = ('set -e; mount -t overlay overlay -o "lowerdir=/usr,upperdir=$1,workdir=$2" "$3/usr"; '
                  'mount --bind /dev "$3/dev"; mount --rbind /proc "$3/proc"; shift 3; exec "$@"')
        return run(["unshare", "-m", "sh", "-c", script, "sh", self.upper, self.base / "usr-work", self.root]
                   + list(args), timeout=timeout, env=dict(os.environ, PATH=PATH_ENV))

    def dpkg(self, *args):
        rc, out = self.run("dpkg", "--root=%s" % self.root, "--force-depends", *args)
        assert rc == 0, "dpkg %s -> %d\n%s" % (" ".join(map(str, args)), rc, out)
        return out

    def chroot(self, *args):
        return self.run("chroot", self.root, *args)

    def passwd(self):
        """name -> (uid, gid, home, shell) from the root's /etc/passwd."""
        users = {}
        for line in (self.root / "etc/passwd").read_text().splitlines():
            name, _, uid, gid, _, home, shell = line.split(":")
            users[name] = (int(uid), int(gid), home, shell)
        return users

    def group(self):
        return {line.split(":")[0]: int(line.split(":")[2])
                for line in (self.root / "etc/group").read_text().splitlines()}

    def status(self):
        rc, out = self.run("dpkg-query", "--admindir=%s/var/lib/dpkg" % self.root, "-W", "-f=${Status}", "tern")
        return out.strip() if rc == 0 else None


@pytest.fixture(scope="module")
def can_use_throwaway_root(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the throwaway-root tests need root (dpkg --root, mount namespaces)")
    base = tmp_path_factory.mktemp("probe")
    for d in ("lower", "upper", "work", "merged"):
        (base / d).mkdir()
    rc, out = run(["unshare", "-m", "mount", "-t", "overlay", "overlay", "-o",
                   "lowerdir=%s,upperdir=%s,workdir=%s" % (base / "lower", base / "upper", base / "work"),
                   base / "merged"])
    if rc != 0:
        pytest.skip("no private overlay mount here (unshare -m + overlayfs): %s" % out.strip())


@pytest.fixture(scope="module")
def installed_root(deb, can_use_throwaway_root, tmp_path_factory):
    r = ThrowawayRoot(tmp_path_factory.mktemp("throwaway"))
    r.dpkg("-i", deb)
    return r


def test_postinst_creates_system_users(installed_root):
    r = installed_root
    assert r.status() == "install ok installed"
    users, groups = r.passwd(), r.group()
    uid, gid, home, shell = users["tern"]
    assert uid < 1000 and gid == groups["tern"], users["tern"]
    assert home == "/var/spool/tern" and shell == "/usr/sbin/nologin"
    uid, gid, home, shell = users["vmail"]
    assert uid < 1000 and gid == groups["vmail"] and shell == "/usr/sbin/nologin", users["vmail"]


def test_postinst_creates_directories_and_users_file(installed_root):
    r = installed_root
    users, groups = r.passwd(), r.group()
    spool = os.stat(r.root / "var/spool/tern")
    assert (spool.st_uid, spool.st_gid, stat.S_IMODE(spool.st_mode)) == (users["tern"][0], groups["tern"], 0o711)
    mail = os.stat(r.root / "var/mail/vhosts")
    assert (mail.st_uid, mail.st_gid, stat.S_IMODE(mail.st_mode)) == (users["vmail"][0], groups["vmail"], 0o750)
    uf = os.stat(r.root / "etc/tern/users")
    assert (uf.st_uid, uf.st_gid, stat.S_IMODE(uf.st_mode)) == (0, groups["tern"], 0o640)
    # root is a user, so the packaged alias postmaster: root has a mailbox.
    assert "root" in (r.root / "etc/tern/users").read_text().split("\n")


def test_postinst_enables_the_unit_without_a_running_systemd(installed_root):
    r = installed_root
    wants = r.root / "etc/systemd/system/multi-user.target.wants/tern.service"
    if shutil.which("deb-systemd-helper") is None:
        pytest.fail("deb-systemd-helper (init-system-helpers) is missing on this machine")
    assert os.readlink(wants) == "/lib/systemd/system/tern.service"
    # The DMARC reports go to other organisations: enabling them is the administrator's call.
    assert not os.path.lexists(r.root / "etc/systemd/system/timers.target.wants/tern-dmarc-report.timer")


def test_packaged_config_passes_check_config_in_the_root(installed_root, tmp_path):
    """The packaged binary checks the packaged config inside the root: the only errors are the
    missing snakeoil files (ssl-cert makes them on a real system); with them it passes."""
    r = installed_root
    rc, out = r.chroot("/usr/sbin/tern", "check-config", "-c", "/etc/tern/tern.conf")
    if not (r.root / "etc/ssl/certs/ssl-cert-snakeoil.pem").exists():
        assert rc == 78, out
        lines = [l for l in out.splitlines() if l.strip()]
        assert lines and all("ssl-cert-snakeoil" in l for l in lines), out
    cert, key = make_cert(tmp_path, "mx.example.org")
    (r.root / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
    (r.root / "etc/ssl/private").mkdir(parents=True, exist_ok=True, mode=0o710)
    shutil.copy(cert, r.root / "etc/ssl/certs/ssl-cert-snakeoil.pem")
    shutil.copy(key, r.root / "etc/ssl/private/ssl-cert-snakeoil.key")
    os.chmod(r.root / "etc/ssl/private/ssl-cert-snakeoil.key", 0o640)
    rc, out = r.chroot("/usr/sbin/tern", "check-config", "-c", "/etc/tern/tern.conf")
    assert rc == 0, out
    assert "warning" not in out, out


def test_unit_verifies_in_the_root(installed_root):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing (package systemd, scripts/deps.sh)")
    r = installed_root
    for unit in ("tern.service", "tern-dmarc-report.service", "tern-dmarc-report.timer"):
        rc, out = r.run("systemd-analyze", "verify", "--man=no", "--root=%s" % r.root, "/lib/systemd/system/" + unit)
        assert rc == 0 and out.strip() == "", (unit, out)


def test_reinstall_remove_and_purge(deb, can_use_throwaway_root, tmp_path):
    r = ThrowawayRoot(tmp_path)
    r.dpkg("-i", deb)
    # The administrator's changes survive an upgrade (here: the same version again).
    with open(r.root / "etc/tern/tern.conf", "a") as f:
        f.write("# local change\n")
    with open(r.root / "etc/tern/users", "a") as f:
        f.write("alice\n")
    os.chown(r.root / "etc/tern/users", 0, 0)
    maildir = r.root / "var/mail/vhosts/localhost/alice/Maildir/new"
    maildir.mkdir(parents=True)
    (maildir / "1.msg").write_text("Subject: keep me\n\nhello\n")
    r.dpkg("--force-confold", "-i", deb)
    assert (r.root / "etc/tern/tern.conf").read_text().endswith("# local change\n")
    assert (r.root / "etc/tern/users").read_text().splitlines()[-1] == "alice"
    assert os.stat(r.root / "etc/tern/users").st_gid == r.group()["tern"]  # ownership repaired
    names = [line.split(":")[0] for line in (r.root / "etc/passwd").read_text().splitlines()]
    assert names.count("tern") == 1 and names.count("vmail") == 1, names

    r.dpkg("--remove", "tern")
    assert r.status() == "deinstall ok config-files"
    # Masked while removed, so the unit left behind cannot start a missing binary.
    assert os.readlink(r.root / "etc/systemd/system/tern.service") == "/dev/null"
    assert not (r.upper / "sbin/tern").exists()
    assert (r.root / "etc/tern/tern.conf").exists()
    assert (r.root / "var/spool/tern").is_dir()

    r.dpkg("--purge", "tern")
    assert r.status() in (None, "", "unknown ok not-installed")
    assert not (r.root / "var/spool/tern").exists()
    assert not (r.root / "etc/tern").exists()
    assert (maildir / "1.msg").read_text().startswith("Subject: keep me")  # the users' mail stays
    assert "tern" in r.passwd() and "vmail" in r.passwd()  # system users are not removed
    # deb-systemd-helper's enablement and the mask of `remove` are gone with the purge.
    for link in ("etc/systemd/system/multi-user.target.wants/tern.service", "etc/systemd/system/tern.service"):
        assert not os.path.lexists(r.root / link), link


# --------------------------------------------------------------------------- man pages

MAN_PAGES = ["docs/tern.8", "docs/tern.conf.5"]


@pytest.mark.parametrize("page", MAN_PAGES)
def test_man_page_renders_without_warnings(page):
    rc, out = run(["groff", "-man", "-Tutf8", "-ww", "-z", SRC / page])
    assert rc == 0 and out == "", out
    rc, out = run(["mandoc", "-Tlint", "-W", "style", SRC / page])
    assert rc == 0 and out == "", out
    text = check(["man", "-l", "-P", "cat", SRC / page], env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "SEE ALSO"):
        assert re.search(r"^%s$" % section, text, re.M), (page, section)


def test_packaged_man_pages_render(deb, tmp_path):
    check(["dpkg-deb", "-x", deb, tmp_path])
    for gz in ("usr/share/man/man8/tern.8.gz", "usr/share/man/man5/tern.conf.5.gz"):
        with gzip.open(tmp_path / gz) as f:
            src = f.read()
        p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=src, capture_output=True, timeout=60)
        assert p.returncode == 0 and p.stderr == b"", p.stderr


def conf_keys_in_source():
    text = (SRC / "src/conf/config_parse.c").read_text()
    table = text[text.index("conf_keys[] = {"):]
    table = table[:table.index("\n};")]
    return re.findall(r'^\s*\{"([a-z_0-9]+)"', table, re.M)


def conf_keys_in_reference():
    """Keys from the tables of docs/config.md headed "Key" (not the metrics table)."""
    keys, in_key_table = [], False
    for line in (SRC / "docs/config.md").read_text().splitlines():
        if not line.startswith("|"):
            in_key_table = False
            continue
        head = re.match(r"^\| (\w+) \|", line)
        if head and not line.startswith("| `"):
            in_key_table = head.group(1) == "Key"
        m = re.match(r"^\| `([a-z_0-9]+)` \|", line)
        if m and in_key_table:
            keys.append(m.group(1))
    return keys


def test_tern_conf_5_documents_every_key():
    page = (SRC / "docs/tern.conf.5").read_text()
    documented = set(re.findall(r'^\.BI ([a-z_0-9]+) " = ', page, re.M))
    source, reference = conf_keys_in_source(), conf_keys_in_reference()
    assert len(source) > 40 and len(reference) > 40
    missing = sorted(set(source + reference + EXTRA_KEYS) - documented)
    assert not missing, "tern.conf(5) lacks: %s" % ", ".join(missing)
    unknown = sorted(documented - set(source + reference + EXTRA_KEYS))
    assert not unknown, "tern.conf(5) documents keys tern does not have: %s" % ", ".join(unknown)


def test_tern_8_documents_every_command():
    page = (SRC / "docs/tern.8").read_text()
    main = (SRC / "src/cmd/main.c").read_text()
    commands = re.findall(r'^\s*\{"([a-z-]+)", cmd_', main, re.M)
    assert "serve" in commands
    sections = set(re.findall(r'^\.SS "?([a-z-]+)', page.replace("\\-", "-"), re.M))
    for cmd in set(commands + ["serve", "check-config", "user", "queue", "send", "sendmail", "version"]) - {"help"}:
        assert cmd in sections, "tern(8) has no section for %s" % cmd
    for action in ("list", "show", "flush", "retry", "hold", "release", "delete", "pause", "resume", "shape"):
        assert re.search(r"^\.BI? %s\b" % action, page, re.M), action
    for opt in ("-s", "--server", "--subject", "--body", "--body-file", "--data", "--starttls", "--tls", "--auth",
                "--password-file", "--insecure", "--cafile", "-bs", "-bp", "-bi", "-oi", "-F", "-q"):
        assert opt.replace("-", "\\-") in page, opt
    for word in ("SIGHUP", "SIGTERM", "EXIT STATUS", "TERN_PASSWORD"):
        assert word in page, word
