"""A full disk, for real: the spool, and separately the Maildir root, on a small tmpfs the test
mounts (root only; CI runs as root) and fills with a file of its own.

Spool: MAIL with a SIZE= that cannot fit gets 452 4.3.1 before any data, so does every MAIL once
nothing is left above queue_minfree; a message that does not fit gets 452 4.3.1 at the end of its
data, whether its body file already could not be written or only its spool record would not fit;
nothing that got 250 is lost (each is delivered exactly once once the next hop and the space are
back, across a restart made while the disk was full), the spool recovers without a damaged
record, and when space returns tern takes mail again without a restart.

Maildir: a delivery that finds its file system full is deferred (452 4.3.1) and leaves nothing in
new/ or tmp/; once there is room, the next attempt delivers it exactly once."""
import contextlib
import os
import re
import subprocess
import time

import pytest

from ternlib import TERN_BIN, TernServer, SinkServer, free_port, make_message, parse_qid, scaled

REMOTE = "bob@remote.example"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")


@contextlib.contextmanager
def tmpfs(path, size, inodes=None):
    """A tmpfs of `size` (and `inodes`) at `path`, unmounted at the end whatever happened."""
    os.makedirs(path, exist_ok=True)
    opts = "size=%s,mode=0755" % size + (",nr_inodes=%d" % inodes if inodes else "")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", path],
                       capture_output=True, timeout=30)
    assert p.returncode == 0, "mount tmpfs on %s: %s" % (path, p.stderr.decode())
    try:
        yield path
    finally:
        # Lazy: a process that still holds a file there cannot keep the mount alive.
        subprocess.run(["umount", "-l", path], capture_output=True, timeout=30)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path, leave):
    """A filler file in `path` that leaves about `leave` bytes free; returns its path."""
    filler = os.path.join(path, "filler")
    with open(filler, "ab") as f:
        want = free_bytes(path) - leave
        chunk = b"\0" * (1 << 20)
        while want > 0:
            n = min(want, len(chunk))
            f.write(chunk[:n])
            want -= n
        f.flush()
        os.fsync(f.fileno())
    return filler


def queue_cmd(server, *args):
    p = subprocess.run([TERN_BIN, "queue", *args, "-c", server.config_path], capture_output=True,
                       timeout=scaled(30))
    assert p.returncode == 0, "tern queue %s: %s" % (" ".join(args), (p.stdout + p.stderr).decode())
    return p.stdout.decode()


@pytest.fixture
def make_server(tmp_path):
    """make_server(mount="spool"|"mail", size, **settings): a started tern whose spool (or
    Maildir root) is a tmpfs of `size`; stopped, checked for sanitizer reports and unmounted at
    teardown."""
    with contextlib.ExitStack() as stack:
        servers = []

        def make(mount, size, extra_lines=(), inodes=None, **settings):
            base = str(tmp_path / ("srv%d" % len(servers)))
            stack.enter_context(tmpfs(os.path.join(base, mount), size, inodes))
            s = TernServer(base, settings, extra_lines=extra_lines)
            servers.append(s)
            stack.callback(s.stop)  # before the unmount (callbacks run in reverse)
            s.start()
            return s

        yield make
        for s in servers:
            s.stop()
            report = s.sanitizer_report()
            if report:
                pytest.fail("sanitizer report in the tern log:\n" + report, pytrace=False)


def mail_reply(server, size=None):
    """The reply to MAIL (with SIZE= if given) in a fresh session."""
    with server.connect() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<sender@example.org>" + (" SIZE=%d" % size if size else ""))
        c.cmd("QUIT")
    return r


def wait_mail_reply(server, code, size=None, timeout=15):
    """Waits until MAIL gets `code` (the smtp process learns the free space within a second)."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        r = mail_reply(server, size)
        if r.code == code:
            return r
        assert time.monotonic() < deadline, "MAIL SIZE=%s still gets %s, expected %d" % (size, r, code)
        time.sleep(0.1)


def try_send(server, subject, size, rcpts=(REMOTE,)):
    """One message of about `size` bytes; returns the final reply (MAIL's if it was refused)."""
    body = ("%s " % subject + "x" * 97 + "\r\n") * max(1, size // 100)
    with server.connect() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<sender@example.org>")
        if r.code != 250:
            return r
        for rc in rcpts:
            c.expect("RCPT TO:<%s>" % rc, 250)
        c.expect("DATA", 354)
        c.send(make_message(subject=subject, body=body, to=rcpts[0]).replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
        r = c.read_reply(timeout=scaled(60))
        c.cmd("QUIT")
    return r


def assert_spool_clean(server):
    log = server.log()
    for bad in ("torn tail", "damaged", "fails its checksum", "unreadable", "corrupt"):
        assert bad not in log, "spool damage after a full disk (%r):\n%s" % (bad, server.log_tail())
    assert os.listdir(os.path.join(server.spool, "corrupt")) == []


def test_full_spool_refuses_with_452_loses_nothing_and_recovers(make_server):
    dead = free_port()
    server = make_server("spool", "4m", queue_minfree="256k", message_size_max="2M",
                         relay_networks="127.0.0.0/8", retry_min="1h", retry_max="2h",
                         extra_lines=["route = remote.example 127.0.0.1:%d" % dead])
    accepted = []  # subjects that got 250: each must reach the next hop exactly once
    refused = []   # subjects that got 452: none may
    for i in range(3):
        r = try_send(server, "before-%d" % i, 20000)
        assert r.code == 250, r
        accepted.append("before-%d" % i)

    # 1 MB free: room for a message of (1M - 256k) / 2 = 384k.
    filler = fill(server.spool, 1 << 20)
    r = wait_mail_reply(server, 452, size=500000)
    assert r.enh == "4.3.1", r
    assert mail_reply(server, size=100000).code == 250
    assert re.search(r"NOQUEUE: reject: MAIL from [^\n]*: 452 4\.3\.1 ", server.log())
    # Its body file does not fit: the write fails in the smtp process.
    r = try_send(server, "body-does-not-fit", 1100000)
    assert (r.code, r.enh) == (452, "4.3.1"), r
    refused.append("body-does-not-fit")
    # The body fits, its spool record next to it would not (with the reserve): the queue says so.
    r = try_send(server, "record-does-not-fit", 800000)
    assert (r.code, r.enh) == (452, "4.3.1"), r
    refused.append("record-does-not-fit")
    assert re.search(r"not queued: the spool is full", server.log())
    # Small messages until the spool is full: some get 250, then 452 (at MAIL or at the end).
    for i in range(60):
        subject = "filling-%d" % i
        r = try_send(server, subject, 40000)
        if r.code != 250:
            assert (r.code, r.enh) == (452, "4.3.1"), r
            refused.append(subject)
            break
        accepted.append(subject)
    else:
        pytest.fail("the spool never filled up")
    assert len(accepted) > 3
    # Less than queue_minfree left: every MAIL is refused, SIZE= or not.
    fill(server.spool, 128 << 10)
    r = wait_mail_reply(server, 452)
    assert r.enh == "4.3.1", r

    # Room again: mail is taken without a restart.
    os.unlink(filler)
    wait_mail_reply(server, 250, size=500000)
    r = try_send(server, "after-room", 300000)
    assert r.code == 250, r
    accepted.append("after-room")
    r = try_send(server, "after-room-local", 1000, rcpts=("alice@example.test",))
    assert r.code == 250, r
    server.wait_find("after-room-local")

    # Full again, and a restart while it is: the spool recovers every message, undamaged.
    filler = fill(server.spool, 64 << 10)
    server.restart()
    m = server.wait_log(r"spool: recovered (\d+) messages", count=1)
    assert int(m.group(1)) == len(accepted), server.log_tail()
    assert (mail_reply(server).code, mail_reply(server).enh) == (452, "4.3.1")
    assert_spool_clean(server)

    # Space and the next hop back: every accepted message arrives exactly once, no refused one.
    os.unlink(filler)
    sink = SinkServer("127.0.0.1", dead).start()
    try:
        wait_mail_reply(server, 250)
        queue_cmd(server, "flush")
        deadline = time.monotonic() + scaled(60)
        while len(sink.messages) < len(accepted) and time.monotonic() < deadline:
            time.sleep(0.1)
        server.wait_log(r"queue: flush requested", count=1)
        server.settle(1.0)
        got = {}
        for msg in sink.messages:
            s = re.search(rb"Subject: (\S+)", msg.data)
            got[s.group(1).decode()] = got.get(s.group(1).decode(), 0) + 1
        assert got == {s: 1 for s in accepted}, (got, accepted, refused)
    finally:
        sink.stop()
    assert_spool_clean(server)


def test_full_maildir_defers_then_delivers_once(make_server):
    server = make_server("mail", "1m", retry_min="1h", retry_max="2h")
    filler = fill(server.mail_root, 8 << 10)
    qids = []
    for user in ("alice", "carol"):
        with server.connect() as c:
            c.ehlo()
            r = c.mail("sender@example.org", ["%s@example.test" % user],
                       make_message(subject="full-maildir-" + user, body=("y" * 98 + "\r\n") * 1000,
                                    to="%s@example.test" % user))
            assert r.code == 250, r
            qids.append(parse_qid(r))
    for qid, user in zip(qids, ("alice", "carol")):
        line = server.wait_log(r"%s: to=<%s@example\.test>[^\n]*status=deferred[^\n]*" % (qid, user)).group(0)
        assert "dsn=4.3.1" in line and "mail system full" in line, line
        for sub in ("new", "tmp"):
            d = os.path.join(server.maildir_path(user), sub)
            assert not os.path.isdir(d) or os.listdir(d) == [], "%s holds %s" % (d, os.listdir(d))

    os.unlink(filler)
    queue_cmd(server, "flush")
    for qid, user in zip(qids, ("alice", "carol")):
        server.wait_log(r"%s: removed" % qid, timeout=30)
        assert len(server.maildir(user)) == 1
        assert os.listdir(os.path.join(server.maildir_path(user), "tmp")) == []
    # Nothing is left to deliver again.
    assert qids[0] not in queue_cmd(server, "list")
    queue_cmd(server, "flush")
    server.settle(1.0)
    for user in ("alice", "carol"):
        assert len(server.maildir(user)) == 1


def test_maildir_made_half_way_on_a_full_disk_is_completed(make_server):
    """The first delivery to a mailbox creates it (tmp/, new/, cur/); a file system that runs
    out (here of inodes) after tmp/ leaves it half made. Once there is room the next attempt
    completes it and delivers, instead of failing for ever on the move into a missing new/."""
    import pwd
    server = make_server("mail", "1m", inodes=200, retry_min="1h", retry_max="2h")
    vmail = pwd.getpwnam("vmail")
    maildir = server.maildir_path("alice")
    d = server.mail_root
    for part in os.path.relpath(maildir, server.mail_root).split(os.sep):
        d = os.path.join(d, part)
        os.mkdir(d, 0o700)
        os.chown(d, vmail.pw_uid, vmail.pw_gid)
    # Every inode used, then one given back: room for tmp/ and nothing after it.
    held = []
    for i in range(1000):
        path = os.path.join(server.mail_root, "inode-%d" % i)
        try:
            open(path, "w").close()
        except OSError:
            break
        held.append(path)
    else:
        pytest.fail("the tmpfs did not run out of inodes")
    os.unlink(held.pop())
    with server.connect() as c:
        c.ehlo()
        r = c.mail("sender@example.org", ["alice@example.test"], make_message(subject="half-made"))
        assert r.code == 250, r
        qid = parse_qid(r)
    line = server.wait_log(r"%s: to=<alice@example\.test>[^\n]*status=deferred[^\n]*" % qid).group(0)
    assert "dsn=4.3.1" in line, line
    assert os.path.isdir(os.path.join(maildir, "tmp")) and not os.path.isdir(os.path.join(maildir, "new"))
    for path in held:
        os.unlink(path)
    queue_cmd(server, "flush")
    server.wait_log(r"%s: removed" % qid, timeout=30)
    assert len(server.maildir("alice")) == 1
    assert os.listdir(os.path.join(maildir, "tmp")) == []
