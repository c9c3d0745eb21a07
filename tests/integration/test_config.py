"""The `tern` command: check-config (errors as FILE:LINE), version, help, serve start/stop."""
import os
import signal
import socket
import subprocess
import time

import pytest

from ternlib import TERN_BIN, TernServer, scaled


def tern(*args, timeout=30):
    p = subprocess.run([TERN_BIN] + list(args), stdin=subprocess.DEVNULL, capture_output=True, timeout=scaled(timeout))
    return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")


@pytest.fixture
def conf(tmp_path):
    """A valid configuration (not started) whose file the test may append to."""
    return TernServer(tmp_path / "cfg")


def line_count(path):
    with open(path) as f:
        return sum(1 for _ in f)


def append(path, *lines):
    """Appends lines; returns the line number of the first one."""
    n = line_count(path) + 1
    with open(path, "a") as f:
        for l in lines:
            f.write(l + "\n")
    return n


def test_check_config_ok(conf):
    rc, out = tern("check-config", "-c", conf.config_path)
    assert rc == 0, out


def test_check_config_long_option(conf):
    rc, out = tern("check-config", "--config", conf.config_path)
    assert rc == 0, out


def test_check_config_comments_blank_lines_inline_comments(conf):
    append(conf.config_path, "", "# a comment", "   # indented comment", "rcpt_max = 200   # inline comment", "")
    rc, out = tern("check-config", "-c", conf.config_path)
    assert rc == 0, out


@pytest.mark.parametrize("value", ["300", "5m", "1h", "30s"])
def test_check_config_durations(conf, value):
    append(conf.config_path, "timeout_command = " + value)
    rc, out = tern("check-config", "-c", conf.config_path)
    assert rc == 0, out


@pytest.mark.parametrize("value", ["1000", "10k", "1M", "2m", "1g"])
def test_check_config_sizes(conf, value):
    append(conf.config_path, "message_size_max = " + value)
    rc, out = tern("check-config", "-c", conf.config_path)
    assert rc == 0, out


BAD_LINES = [
    "frobnicate = 1",
    "hostname mx.test",
    "rcpt_max = many",
    "message_size_max = 12q",
    "bare_lf = sometimes",
    "listen = 127.0.0.1 mx",
    "listen = 999.1.1.1:2525 mx",
    "listen = 127.0.0.1:70000 mx",
    "listen = 127.0.0.1:2525 frobnicator",
    "timeout_command = soon",
    "timeout_data = -5",
    "sessions_per_ip = 1.5",
    "= value",
]


@pytest.mark.parametrize("bad", BAD_LINES)
def test_check_config_error_names_file_and_line(conf, bad):
    n = append(conf.config_path, bad)
    rc, out = tern("check-config", "-c", conf.config_path)
    assert rc != 0, "check-config accepted %r: %s" % (bad, out)
    assert "%s:%d:" % (conf.config_path, n) in out, "no %s:%d: in %r" % (conf.config_path, n, out)


def test_check_config_reports_every_error(conf):
    a = append(conf.config_path, "frobnicate = 1")
    append(conf.config_path, "hostname = mx.test")
    b = append(conf.config_path, "bare_lf = sometimes")
    rc, out = tern("check-config", "-c", conf.config_path)
    assert rc != 0
    assert "%s:%d:" % (conf.config_path, a) in out and "%s:%d:" % (conf.config_path, b) in out, out


def test_check_config_error_in_first_line(tmp_path):
    p = tmp_path / "first.conf"
    p.write_text("nonsense\nhostname = mx.test\n")
    rc, out = tern("check-config", "-c", str(p))
    assert rc != 0
    assert "%s:1:" % p in out, out


def test_check_config_missing_file(tmp_path):
    p = tmp_path / "does-not-exist.conf"
    rc, out = tern("check-config", "-c", str(p))
    assert rc != 0
    assert str(p) in out, out


def test_check_config_missing_users_file(conf):
    os.unlink(conf.users_path)
    rc, out = tern("check-config", "-c", conf.config_path)
    assert rc != 0
    assert conf.users_path in out, out


def test_check_config_bad_users_line(conf):
    with open(conf.users_path, "a") as f:
        f.write("bad user!\n")
    n = line_count(conf.users_path)
    rc, out = tern("check-config", "-c", conf.config_path)
    assert rc != 0, out
    assert "%s:%d:" % (conf.users_path, n) in out, out


def test_check_config_bad_aliases_line(conf):
    with open(conf.aliases_path, "a") as f:
        f.write("no colon here\n")
    n = line_count(conf.aliases_path)
    rc, out = tern("check-config", "-c", conf.config_path)
    assert rc != 0, out
    assert "%s:%d:" % (conf.aliases_path, n) in out, out


def test_check_config_unknown_option():
    rc, out = tern("check-config", "--frobnicate")
    assert rc != 0


def test_version():
    rc, out = tern("version")
    assert rc == 0, out
    assert "tern" in out.lower() and any(ch.isdigit() for ch in out), out


def test_version_flag():
    rc, out = tern("--version")
    assert rc == 0 and any(ch.isdigit() for ch in out), out


def test_help():
    rc, out = tern("help")
    assert rc == 0, out
    for cmd in ("serve", "check-config", "version", "help"):
        assert cmd in out, (cmd, out)


@pytest.mark.parametrize("cmd", ["serve", "check-config", "user", "send", "queue"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_subcommand_help(cmd, flag):
    """`tern CMD --help` prints its usage on stdout and succeeds: no error line, nothing
    started or changed."""
    p = subprocess.run([TERN_BIN, cmd, flag], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=scaled(20))
    out, err = p.stdout.decode(), p.stderr.decode()
    assert p.returncode == 0, (p.returncode, out, err)
    assert err == "", err
    assert out.startswith("usage: tern %s" % cmd), out


def test_unknown_command():
    rc, out = tern("frobnicate")
    assert rc != 0
    assert "frobnicate" in out


def test_serve_refuses_bad_config(conf):
    n = append(conf.config_path, "frobnicate = 1")
    p = subprocess.run([TERN_BIN, "serve", "-c", conf.config_path], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=scaled(20))
    assert p.returncode != 0
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert "%s:%d:" % (conf.config_path, n) in out, out


def _port_closed(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_on_signal(tern_factory, sig):
    s = tern_factory()
    s.proc.send_signal(sig)
    try:
        rc = s.proc.wait(timeout=scaled(10))
    except subprocess.TimeoutExpired:
        raise AssertionError("tern did not stop within 10 s of %s" % sig.name)
    assert rc == 0, "exit status %s after %s" % (rc, sig.name)
    deadline = time.monotonic() + scaled(5)
    while not s._group_gone() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert s._group_gone(), "child processes left running after the parent stopped"
    assert _port_closed(s.port)


def test_serve_stops_with_open_sessions(tern_factory):
    s = tern_factory()
    c = s.connect()
    c.ehlo()
    s.proc.send_signal(signal.SIGTERM)
    try:
        s.proc.wait(timeout=scaled(15))
    except subprocess.TimeoutExpired:
        raise AssertionError("an open session kept tern from stopping")
    finally:
        c.close()


def test_children_die_with_parent(tern_factory):
    """If only the parent is killed, the children must not keep serving (or the port)."""
    s = tern_factory()
    os.kill(s.proc.pid, signal.SIGKILL)
    s.proc.wait(timeout=10)
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline and not s._group_gone():
        time.sleep(0.1)
    assert s._group_gone(), "children outlived a killed parent"


def test_log_format(tern_factory):
    s = tern_factory()
    with s.connect() as c:
        c.ehlo()
        c.cmd("QUIT")
    s.wait_log(r"disconnect from ")
    log = s.log()
    assert "tern/smtpd[" in log and "connect from " in log and "[127.0.0.1]" in log, log[-2000:]
    assert "disconnect from " in log, log[-2000:]
