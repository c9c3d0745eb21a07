"""The queue's answer to a commit is the client's reply, with its meaning: a message the queue
refuses for good gets the 5xx its cause calls for (so the client bounces it instead of sending it
again for days), a spool that is full gets 452 4.3.1, and nothing refused is delivered.

Provoked for real here: a message over message_size_max after a reload lowered it (the session
in the old smtp process checked the old limit: 552 5.3.4) and a recipient removed from the users
file by a reload between RCPT and DATA (550 5.1.1). The spool-full answers (452 4.3.1) are in
test_full_disk.py. Not provoked for real (no client or file system can reach them): an unknown
queue id, a content size that disagrees with the envelope, a malformed envelope (a broken smtp
process: 451 4.3.0), an envelope over the spool's limit (more than ENVELOPE_MAX_RCPTS could
make: 552 5.3.4) and a failed fsync (451 4.3.0); those are in tests/unit/test_queue.c,
test_store.c and the dialogue tests/smtp/13_commit_results.dlg."""
import os
import re
import signal

from ternlib import make_message


def reload_config(server, **changes):
    """Rewrites settings in the config file and reloads; returns when the queue has them."""
    with open(server.config_path) as f:
        text = f.read()
    for key, value in changes.items():
        text, n = re.subn(r"(?m)^%s = .*$" % re.escape(key), "%s = %s" % (key, value), text)
        if n == 0:
            text += "%s = %s\n" % (key, value)
    with open(server.config_path, "w") as f:
        f.write(text)
    before = server.log().count("reload: configuration, aliases and users read again")
    os.kill(server.proc.pid, signal.SIGHUP)
    server.wait_log(r"reload: configuration, aliases and users read again", count=before + 1)


def open_transaction(server, rcpt="alice@example.test"):
    c = server.connect()
    c.ehlo()
    c.expect("MAIL FROM:<sender@example.org>", 250, "2.1.0")
    c.expect("RCPT TO:<%s>" % rcpt, 250, "2.1.5")
    return c


def send_data(c, content):
    c.expect("DATA", 354)
    c.send(content.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
    return c.read_reply()


def test_too_big_after_a_reload_is_552(tern_factory):
    """The session checked message_size_max as it was when its smtp process started; the queue
    checks the limit of now, and says so in a way the client can act on: 552 5.3.4, a bounce,
    not a retry."""
    server = tern_factory(message_size_max="1M")
    c = open_transaction(server)
    reload_config(server, message_size_max="10k")
    marker = "too-big-after-reload"
    body = ("x" * 998 + "\r\n") * 100  # 100 KB: over 10k and the queue's slack for our header
    r = send_data(c, make_message(subject=marker, body=body))
    assert (r.code, r.enh) == (552, "5.3.4"), r
    # The session goes on; a message within the new limit is queued and delivered.
    c.expect("MAIL FROM:<sender@example.org>", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)
    r = send_data(c, make_message(subject="small-after-reload"))
    assert r.code == 250, r
    c.close()
    server.wait_find("small-after-reload")
    assert server.find(marker) == []
    assert re.search(r"size=\d+ exceeds message_size_max; not queued", server.log())


def test_recipient_removed_by_a_reload_is_550(tern_factory):
    """RCPT was accepted; by the end of DATA a reload removed the user. The queue has no
    recipient left: 550 5.1.1 (what RCPT would say now), never a 250 for mail that could only
    bounce, and never a 451 the client would retry for days."""
    server = tern_factory()
    c = open_transaction(server, "dave@example.test")
    with open(server.users_path) as f:
        users = [u for u in f.read().splitlines() if u.strip() != "dave"]
    with open(server.users_path, "w") as f:
        f.write("".join(u + "\n" for u in users))
    reload_config(server)
    marker = "rcpt-gone-after-reload"
    r = send_data(c, make_message(subject=marker, to="dave@example.test"))
    assert (r.code, r.enh) == (550, "5.1.1"), r
    c.expect("MAIL FROM:<sender@example.org>", 250)
    c.close()
    server.send_one(make_message(subject="after-the-refusal"))
    server.wait_find("after-the-refusal")
    assert server.find(marker) == []
    assert "no deliverable recipient after alias expansion; not queued" in server.log()
