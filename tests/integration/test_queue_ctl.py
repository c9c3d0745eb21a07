"""`tern queue ...`: the operator's commands through the daemon's control socket, against a
real `tern serve`. Deferred mail comes from a route to a port nobody listens on (connection
refused at once; retries an hour later), or from pausing the local domain; a SinkServer
started later on that port receives what a retry sends."""
import datetime
import os
import re
import subprocess
import time

import pytest

from ternlib import TERN_BIN, free_port, make_message, parse_qid, scaled

REMOTE = "bob@remote.example"


def queue(server, *args, check=None):
    cmd = [TERN_BIN, "queue", *args, "-c", server.config_path]
    p = subprocess.run(cmd, capture_output=True, timeout=scaled(30))
    if check is not None:
        assert p.returncode == check, "tern queue %s: exit %d\n%s%s" % (
            " ".join(args), p.returncode, p.stdout.decode(), p.stderr.decode())
    return p


def out(p):
    return p.stdout.decode()


def send(server, rcpts, subject="q", sender="carol@example.org"):
    with server.connect() as c:
        c.ehlo()
        r = c.mail(sender, rcpts, make_message(subject=subject, frm=sender, to=rcpts[0]))
        assert r.code == 250, r
        return parse_qid(r)


@pytest.fixture
def dead_port():
    return free_port()


@pytest.fixture
def relay(tern_factory, dead_port):
    """A tern that relays remote.example to 127.0.0.1:dead_port and retries after an hour."""
    def make(**kw):
        return tern_factory(relay_networks="127.0.0.0/8", retry_min="1h", retry_max="2h",
                            extra_lines=["route = remote.example 127.0.0.1:%d" % dead_port], **kw)
    return make


def wait_deferred(server, qid, n=1):
    server.wait_log(r"%s: to=<[^>]*>.*status=deferred" % qid, count=n, timeout=scaled(15))


def next_attempt_in(server, qid):
    """Seconds until the queue's next attempt at `qid` (`tern queue show`)."""
    text = server.wait_queue_state(qid, r"^waiting$")
    m = re.search(r"(?m)^next attempt:\s+(.*)$", text)
    assert m, text
    return datetime.datetime.strptime(m.group(1).strip(), "%Y-%m-%d %H:%M:%S %z").timestamp() - time.time()


def barrier(server, rcpt="alice@example.test", subject="barrier"):
    """A message sent after the fact, delivered and gone: the queue has run its deliveries to
    rcpt's domain since. Returns its queue id."""
    qid = send(server, [rcpt], subject=subject)
    server.wait_log(r"%s: removed" % qid)
    return qid


def listed_ids(text):
    return re.findall(r"^([0-9A-F]{16})[ *!]", text, re.M)


def test_list_shows_a_deferred_message_with_its_error(relay):
    server = relay()
    qid = send(server, [REMOTE], sender="carol@example.org")
    wait_deferred(server, qid)
    text = out(queue(server, "list", check=0))
    assert listed_ids(text) == [qid], text
    entry = text.split(qid, 1)[1]
    assert "carol@example.org" in entry.splitlines()[0]
    assert REMOTE in entry
    assert re.search(r"\(.*(refused|connect).*\)", entry, re.I), text
    assert "-- 1 Kbytes in 1 Request." in text


def test_empty_queue(server):
    assert out(queue(server, "list", check=0)).strip() == "Mail queue is empty"


def test_show_gives_envelope_and_recipient_state(relay):
    server = relay()
    qid = send(server, [REMOTE, "alice@example.test"], sender="carol@example.org")
    wait_deferred(server, qid)
    server.wait_delivered("alice", 1)
    text = out(queue(server, "show", qid, check=0))
    assert re.search(r"^queue id:\s+%s$" % qid, text, re.M), text
    assert re.search(r"^sender:\s+<carol@example.org>$", text, re.M), text
    assert re.search(r"^client:\s+.*\[127\.0\.0\.1\]$", text, re.M), text
    blocks = text.split("recipient:")[1:]
    assert len(blocks) == 2, text
    remote = [b for b in blocks if REMOTE in b][0]
    local = [b for b in blocks if "alice@example.test" in b][0]
    assert re.search(r"status:\s+pending", remote) and re.search(r"attempts:\s+1\b", remote), text
    assert re.search(r"last error:\s+4\d\d ", remote), text
    assert re.search(r"next attempt:", remote), text
    assert re.search(r"status:\s+delivered", local), text


def test_retry_delivers_now_once_the_next_hop_is_back(relay, dead_port, sink_factory):
    server = relay()
    qid = send(server, [REMOTE], subject="retry-me")
    wait_deferred(server, qid)
    # retry_min is an hour: the queue will not try again by itself during the test.
    assert next_attempt_in(server, qid) > 1800
    sink = sink_factory("127.0.0.1", dead_port)
    assert qid in out(queue(server, "retry", qid, check=0))
    sink.wait_find("retry-me")
    server.wait_log(r"%s: removed" % qid)
    assert len(sink.messages) == 1
    server.wait_log(r"%s: removed" % qid)
    assert out(queue(server, "list", check=0)).strip() == "Mail queue is empty"


def test_flush_tries_every_waiting_message(relay, dead_port, sink_factory):
    server = relay()
    qids = [send(server, [REMOTE], subject="flush-%d" % i) for i in range(3)]
    for q in qids:
        wait_deferred(server, q)
    sink = sink_factory("127.0.0.1", dead_port)
    text = out(queue(server, "flush", check=0))
    assert text.startswith("3 messages"), text
    for q in qids:
        server.wait_log(r"%s: removed" % q)
    assert sorted(m.data.split(b"Subject: ")[1].split(b"\r\n")[0] for m in sink.messages) == [
        b"flush-0", b"flush-1", b"flush-2"]


def test_pause_keeps_mail_for_a_domain_across_a_restart_and_resume_delivers(server):
    assert "paused" in out(queue(server, "pause", "example.test", check=0))
    qid = send(server, ["alice@example.test"], subject="paused-1")
    server.wait_queue_state(qid, "waiting for a paused destination")
    assert server.maildir("alice") == [], "delivered to a paused domain"
    text = out(queue(server, "list", check=0))
    assert listed_ids(text) == [qid]
    assert "paused" in text
    # Other destinations are not held up.
    other = send(server, ["alice@localhost"], subject="not-paused")
    server.wait_log(r"%s: to=<alice@localhost>.*status=sent" % other)
    # The pause is kept across a restart.
    server.restart()
    server.wait_queue_state(qid, "waiting for a paused destination")
    assert server.maildir("alice") == []
    assert "delivery to example.test is paused" in out(queue(server, "list", check=0))
    assert "resumed" in out(queue(server, "resume", "example.test", check=0))
    server.wait_delivered("alice", 1)
    assert out(queue(server, "list", check=0)).strip() == "Mail queue is empty"
    # Resuming twice says so and changes nothing.
    assert "was not paused" in out(queue(server, "resume", "example.test", check=0))


def test_hold_survives_restart_and_resume_release_delivers(server):
    queue(server, "pause", "example.test", check=0)
    qid = send(server, ["alice@example.test"], subject="held-1")
    server.wait_queue_state(qid, "waiting for a paused destination")
    assert "on hold" in out(queue(server, "hold", qid, check=0))
    queue(server, "resume", "example.test", check=0)
    # A message sent after the resume is delivered: the held one, queued before it, is not.
    barrier(server, subject="after-resume")
    assert server.find("held-1") == [], "a held message was delivered"
    text = out(queue(server, "list", check=0))
    assert re.search(r"^%s!" % qid, text, re.M), text
    assert re.search(r"state:\s+on hold", out(queue(server, "show", qid, check=0)))
    server.restart()
    barrier(server, subject="after-restart")
    assert server.find("held-1") == [], "the hold was lost in a restart"
    assert "released" in out(queue(server, "release", qid, check=0))
    server.wait_find("held-1")
    server.wait_log(r"%s: removed" % qid)


def test_delete_removes_without_delivery_or_bounce(relay):
    server = relay()
    qid = send(server, [REMOTE], sender="alice@example.test", subject="delete-me")
    wait_deferred(server, qid)
    assert "deleted" in out(queue(server, "delete", qid, check=0))
    server.wait_log(r"%s: deleted by the operator" % qid)
    assert out(queue(server, "list", check=0)).strip() == "Mail queue is empty"
    server.wait_queue_idle()
    assert server.maildir("alice") == [], "a deleted message produced a notice"
    # Gone for good: also after a restart.
    server.restart()
    assert out(queue(server, "list", check=0)).strip() == "Mail queue is empty"
    p = queue(server, "show", qid)
    assert p.returncode == 66 and b"no such message" in p.stderr


def test_all_hold_release_delete(relay):
    server = relay()
    qids = [send(server, [REMOTE], subject="all-%d" % i) for i in range(4)]
    for q in qids:
        wait_deferred(server, q)
    assert out(queue(server, "hold", "ALL", check=0)).startswith("4 messages put on hold")
    assert len(re.findall(r"^[0-9A-F]{16}!", out(queue(server, "list", check=0)), re.M)) == 4
    assert out(queue(server, "release", "ALL", check=0)).startswith("4 messages released")
    assert out(queue(server, "delete", "ALL", check=0)).startswith("4 messages deleted")
    assert out(queue(server, "list", check=0)).strip() == "Mail queue is empty"


def test_shape_counts_pending_recipients_by_domain(relay):
    server = relay()
    queue(server, "pause", "example.test", check=0)
    remote = [send(server, [REMOTE, "zed@remote.example"]), send(server, [REMOTE])]
    local = send(server, ["alice@example.test"])
    # Every message has had its (first) turn: the remote ones tried, the local one held back.
    for q in remote:
        server.wait_queue_state(q, r"^waiting$")
    server.wait_queue_state(local, "waiting for a paused destination")
    text = out(queue(server, "shape", check=0))
    lines = text.splitlines()
    head = lines[0].split()
    assert head == ["T", "5", "10", "20", "40", "80", "160", "320", "640", "1280", "1280+"], text
    rows = {l.split()[0]: [int(x) for x in l.split()[1:]] for l in lines[1:]}
    assert rows["TOTAL"][0] == 4 and rows["TOTAL"][1] == 4, text
    assert rows["remote.example"][:2] == [3, 3], text
    assert rows["example.test"][:2] == [1, 1], text
    # Busiest destination first, after TOTAL.
    assert lines[2].split()[0] == "remote.example"


def test_errors_have_clear_messages_and_exit_codes(server):
    p = queue(server, "show", "0123456789ABCDEF")
    assert p.returncode == 66 and b"no such message" in p.stderr
    p = queue(server, "frobnicate")
    assert p.returncode == 64 and b"unknown command" in p.stderr
    p = queue(server, "show")
    assert p.returncode == 64
    p = queue(server, "pause", "bad;domain")
    assert p.returncode == 64
    p = queue(server, "hold", "not-a-queue-id")
    assert p.returncode == 66
    p = subprocess.run([TERN_BIN, "queue", "--bogus"], capture_output=True, timeout=30)
    assert p.returncode == 64


def test_daemon_down_gives_unavailable(tern_factory):
    server = tern_factory(start=False)
    p = queue(server, "list")
    assert p.returncode == 69 and b"not running" in p.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_other_users_are_refused(tern_factory):
    """Twice: by the socket file's mode, and by the peer's credentials when the file mode
    would let them in."""
    import shutil
    import tempfile
    pub = tempfile.mkdtemp(prefix="tern-ctl-")
    try:
        os.chmod(pub, 0o755)
        import pwd
        from ternlib import RUN_USER
        tern = pwd.getpwnam(RUN_USER)
        os.chown(pub, tern.pw_uid, tern.pw_gid)  # the daemon's user makes the socket there
        sock = os.path.join(pub, "control")
        server = tern_factory(control_socket=sock)
        conf = os.path.join(pub, "tern.conf")
        shutil.copy(server.config_path, conf)
        os.chmod(conf, 0o644)
        assert oct(os.stat(sock).st_mode & 0o777) == "0o660"
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               TERN_BIN, "queue", "list", "-c", conf]
        p = subprocess.run(cmd, capture_output=True, timeout=scaled(30))
        assert p.returncode == 77, (p.returncode, p.stderr)
        os.chmod(sock, 0o666)
        p = subprocess.run(cmd, capture_output=True, timeout=scaled(30))
        assert p.returncode == 77 and b"only root and the daemon's user" in p.stderr, (p.returncode, p.stderr)
        server.wait_log("control: refused a client without permission")
        # Root still gets in.
        assert out(queue(server, "list", check=0)).strip() == "Mail queue is empty"
    finally:
        shutil.rmtree(pub, ignore_errors=True)


def test_control_protocol_rejects_garbage(server):
    """Raw bytes on the socket: an over-long line and a NUL get ERR, the daemon lives on."""
    import socket
    path = os.path.join(server.spool, "control")
    for payload in (b"x" * 20000 + b"\n", b"list\x00\n", b"\xff\xfe\n", b"\n", b"pause ex\x98ample.org\n"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(scaled(10))
        s.connect(path)
        try:
            s.sendall(payload)
        except OSError:
            pass
        data = b""
        while True:
            try:
                chunk = s.recv(4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        s.close()
        assert data.startswith(b"ERR 64 "), (payload[:20], data)
    assert out(queue(server, "list", check=0)).strip() == "Mail queue is empty"
