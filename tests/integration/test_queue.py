"""The queue behind the 250: a delivery that fails for now is kept and retried, across a
restart too; one that succeeds is not retried."""
import os
import pwd
import re

from ternlib import MAIL_USER, Delivered, crlf_to_lf, make_message


def obstruct(server, user, domain="example.test"):
    """Makes <mail>/<domain>/<user> a regular file, so the Maildir cannot be created."""
    d = os.path.join(server.mail_root, domain)
    os.makedirs(d, exist_ok=True)
    if os.geteuid() == 0:  # the domain directory is the mail user's, as tern would make it
        mail = pwd.getpwnam(MAIL_USER)
        os.chown(d, mail.pw_uid, mail.pw_gid)
    p = os.path.join(d, user)
    with open(p, "w") as f:
        f.write("not a directory\n")
    return p


def wait_log(server, pattern, timeout=10):
    return server.wait_log(pattern, timeout)


def test_temporary_failure_is_retried(tern_factory):
    s = tern_factory(retry_min=1, retry_max=2)
    blocker = obstruct(s, "erin")
    msg = make_message("retry-me", to="erin@example.test")
    r, qid = s.send_one(msg, rcpts=("erin@example.test",))
    assert r.code == 250, r
    wait_log(s, re.escape(qid) + r": to=<erin@example\.test>, .*status=deferred")
    assert s.maildir("erin") == []
    os.unlink(blocker)
    (raw,) = s.wait_delivered("erin", 1, timeout=20)
    assert Delivered(raw).content == crlf_to_lf(msg)
    s.wait_queue_idle()  # gone from the queue: a delivered message is not delivered again
    assert len(s.maildir("erin")) == 1


def test_failure_of_one_recipient_does_not_hold_others(tern_factory):
    s = tern_factory(retry_min=1, retry_max=2)
    blocker = obstruct(s, "erin")
    r, qid = s.send_one(make_message("partial-failure"), rcpts=("alice@example.test", "erin@example.test"))
    assert r.code == 250, r
    s.wait_delivered("alice", 1)
    wait_log(s, re.escape(qid) + r": to=<erin@example\.test>, .*status=deferred")
    os.unlink(blocker)
    s.wait_delivered("erin", 1, timeout=20)
    s.wait_queue_idle()
    assert len(s.maildir("alice")) == 1, "the recipient that succeeded got the message again on retry"
    assert len(s.maildir("erin")) == 1


def test_deferred_message_survives_restart(tern_factory):
    s = tern_factory(retry_min=1, retry_max=2)
    blocker = obstruct(s, "erin")
    msg = make_message("deferred-restart", to="erin@example.test")
    r, qid = s.send_one(msg, rcpts=("erin@example.test",))
    assert r.code == 250, r
    wait_log(s, re.escape(qid) + r": to=<erin@example\.test>, .*status=deferred")
    s.stop()
    os.unlink(blocker)
    s.start()
    (raw,) = s.wait_delivered("erin", 1, timeout=20)
    assert Delivered(raw).content == crlf_to_lf(msg)
    assert re.search(r"Received: from .* id %s\b" % re.escape(qid), Delivered(raw).received or ""), Delivered(raw).received


def test_delivered_message_not_redelivered_after_restart(server):
    msgs = [make_message("once-%d" % i) for i in range(5)]
    for m in msgs:
        r, _ = server.send_one(m)
        assert r.code == 250
    server.wait_delivered("alice", 5)
    server.wait_queue_idle()
    server.restart()
    server.wait_queue_idle()
    assert len(server.maildir("alice")) == 5


def test_spool_keeps_nothing_after_delivery(server):
    """Once every recipient is delivered the message is removed (log says so)."""
    r, qid = server.send_one(make_message("removed"))
    assert r.code == 250
    server.wait_delivered("alice", 1)
    wait_log(server, re.escape(qid) + r": removed")
