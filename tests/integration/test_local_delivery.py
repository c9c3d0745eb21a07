"""Local delivery beyond Maildir (issue 12): mbox files, commands of the aliases file,
recipient_delimiter and catch-all aliases, through the real `tern serve` and its delivery
process (tern-local, running as the mail user when the tests run as root).

mbox: what tern writes is read by Python's mailbox.mbox, each message byte for byte (after
un-quoting mboxrd's '>From '); a reader holding the mbox's locks (Python's lock(): fcntl and
<file>.lock) makes every delivery wait mbox_lock_wait and defer, and once it lets go each
message is there exactly once; a full file system (a tmpfs, root only) leaves the mbox exactly
as it was. Commands: argv and environment are exactly what the template and the envelope say,
shell syntax in the envelope arrives as plain bytes, stdin is the message; the exit status
decides (sysexits.h), output reaches the bounce, the time limit kills the command's whole
process group."""
import contextlib
import json
import mailbox
import os
import re
import signal
import subprocess
import time

import pytest

from ternlib import MAIL_USER, Delivered, crlf_to_lf, make_message, poll, scaled

DOMAIN = "example.test"


def unquote_mboxrd(b):
    """One '>' off every line matching ^>+From  (mboxrd)."""
    return re.sub(rb"(?m)^>(>*From )", rb"\1", b)


def chown_mail(path):
    """Root only: gives `path` to the mail user, as an operator's install would."""
    if os.geteuid() == 0:
        import pwd
        pw = pwd.getpwnam(MAIL_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def mbox_path(server, user, domain=DOMAIN):
    return os.path.join(server.mail_root, domain, user)


def read_mbox(path):
    """(from line, un-quoted message bytes) of each message Python's mailbox.mbox finds."""
    if not os.path.exists(path):
        return []
    box = mailbox.mbox(path, create=False)
    try:
        return [(box.get_message(k).get_from(), unquote_mboxrd(box.get_bytes(k))) for k in box.keys()]
    finally:
        box.close()


def wait_mbox(path, n, server, timeout=15):
    return poll(lambda: read_mbox(path), lambda m: len(m) >= n, scaled(timeout),
                lambda m: "%s holds %d message(s), expected %d; log tail:\n%s" % (path, len(m), n, server.log_tail()))


# --------------------------------------------------------------------------- mbox

TRICKY = (b"From: <sender@example.org>\r\nTo: <alice@example.test>\r\nSubject: tricky\r\n\r\n"
          b"From the first line of the body\r\n"
          b">From already quoted once\r\n"
          b">>From twice\r\n"
          b"From\r\n"
          b"Fromage is no separator\r\n"
          b" From with a space before\r\n"
          b"8 bit \xc3\xa9\r\n"
          b"\r\n"
          b"From after an empty line\r\n")


def test_mbox_read_back_by_python_byte_exact(tern_factory):
    s = tern_factory(mbox="mail/%d/%u", recipient_delimiter="+")
    sent = [TRICKY, make_message("plain", "one line\r\n"), make_message("no final newline", b"x")]
    for i, content in enumerate(sent):
        r, _ = s.send_one(content, rcpts=("alice+box%d@%s" % (i, DOMAIN),))
        assert r.code == 250, r
        wait_mbox(mbox_path(s, "alice"), i + 1, s)
    s.wait_queue_idle()  # each delivery done, its locks given back
    msgs = read_mbox(mbox_path(s, "alice"))
    assert len(msgs) == 3
    for i, ((from_line, raw), content) in enumerate(zip(msgs, sent)):
        assert re.fullmatch(r"sender@example\.org \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}", from_line), from_line
        d = Delivered(raw)
        assert d.return_path == b"<sender@example.org>"
        assert d.delivered_to == ("alice+box%d@%s" % (i, DOMAIN)).encode()
        assert d.received and "id " in d.received
        want = crlf_to_lf(content)
        if not want.endswith(b"\n"):
            want += b"\n"  # a message without a final line end gets one
        assert d.content == want, (d.content, want)
    # The file itself: separators only at entry starts, each entry ending with an empty line.
    with open(mbox_path(s, "alice"), "rb") as f:
        data = f.read()
    assert len(re.findall(rb"(?m)^From ", data)) == 3
    assert data.endswith(b"\n\n")
    assert b"\n>From the first line" in data and b"\n>>From already" in data and b"\n>>>From twice" in data
    assert not os.path.exists(mbox_path(s, "alice") + ".lock")
    assert s.all_messages() == []  # no Maildir anywhere
    if os.geteuid() == 0:
        import pwd
        st = os.stat(mbox_path(s, "alice"))
        assert st.st_uid == pwd.getpwnam(MAIL_USER).pw_uid and st.st_mode & 0o777 == 0o600


def test_mbox_waits_for_a_reader_holding_the_lock_then_defers(tern_factory):
    """A mail reader holds the mbox (Python's lock(): fcntl and the dot-lock): each delivery
    waits mbox_lock_wait, is deferred (4.2.0) and writes nothing; once the reader lets go,
    each message is delivered exactly once."""
    s = tern_factory(mbox="mail/%d/%u", mbox_lock_wait="1s", retry_min="1s", retry_max="2s")
    path = mbox_path(s, "alice")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    chown_mail(os.path.dirname(path))
    r, _ = s.send_one(make_message("before"))
    assert r.code == 250
    wait_mbox(path, 1, s)
    with open(path, "rb") as f:
        before = f.read()
    box = mailbox.mbox(path)
    box.lock()
    try:
        markers = ["locked-%d" % i for i in range(4)]
        for m in markers:
            r, _ = s.send_one(make_message(m, "body of %s\r\n" % m))
            assert r.code == 250
        # Every one of them waited and was deferred, at least once.
        s.wait_log(r"dsn=4\.2\.0, status=deferred \(mailbox locked by another program for 1 s\)",
                   count=len(markers), timeout=30)
        with open(path, "rb") as f:
            assert f.read() == before
    finally:
        box.unlock()
        box.close()
    msgs = wait_mbox(path, 1 + len(markers), s, timeout=30)
    s.wait_queue_idle()
    msgs = read_mbox(path)
    assert len(msgs) == 1 + len(markers)
    for m in markers:
        assert sum(("Subject: %s\n" % m).encode() in raw for _, raw in msgs) == 1, m


def test_mbox_left_as_it_was_on_a_full_disk(tmp_path):
    """The mail root on a small tmpfs, filled: a delivery that does not fit is deferred
    (452 4.3.1) and the mbox is exactly as before, not half a message longer; with room again
    it is delivered once."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    from test_full_disk import fill, tmpfs
    from ternlib import TernServer
    base = tmp_path / "srv"
    with tmpfs(str(base / "mail"), "4m"):
        s = TernServer(base, {"mbox": str(base / "mail") + "/%d/%u", "retry_min": "1s", "retry_max": "2s",
                              "message_size_max": "2M"})
        try:
            s.start()
            path = mbox_path(s, "alice")
            r, _ = s.send_one(make_message("first", "small\r\n"))
            assert r.code == 250
            wait_mbox(path, 1, s)
            with open(path, "rb") as f:
                before = f.read()
            filler = fill(str(base / "mail"), 64 * 1024)
            big = make_message("big", ("x" * 98 + "\r\n") * 5000)  # 500 KB: cannot fit
            r, _ = s.send_one(big)
            assert r.code == 250
            s.wait_log(r"to=<alice@example\.test>.*dsn=4\.3\.1, status=deferred \(mail system full", timeout=30)
            with open(path, "rb") as f:
                assert f.read() == before
            assert not os.path.exists(path + ".lock")
            os.unlink(filler)
            wait_mbox(path, 2, s, timeout=30)
            s.wait_queue_idle()
            msgs = read_mbox(path)
            assert len(msgs) == 2
            assert Delivered(msgs[1][1]).content == crlf_to_lf(big)
        finally:
            s.stop()
            report = s.sanitizer_report()
            assert not report, report


# --------------------------------------------------------------------------- commands

SCRIPT = r'''#!/usr/bin/python3
# Writes what it was given (argv, the environment as exec'd it, stdin) as JSON, then behaves as
# its first argument says.
import json, os, signal, sys, time
out = sys.argv[1]
with open("/proc/self/environ", "rb") as f:
    env = [e.decode("latin-1") for e in f.read().split(b"\0") if e]
data = sys.stdin.buffer.read()
rec = {"argv": sys.argv[2:], "env": env, "stdin": data.decode("latin-1"), "cwd": os.getcwd(),
       "pid": os.getpid(), "pgid": os.getpgid(0)}
how = sys.argv[2] if len(sys.argv) > 2 else ""
if how == "sleep":
    kid = os.fork()
    if kid == 0:
        time.sleep(600)
        os._exit(0)
    rec["child"] = kid
tmp = os.path.join(out, ".%d" % os.getpid())
with open(tmp, "w") as f:
    json.dump(rec, f)
os.rename(tmp, os.path.join(out, "%d.json" % os.getpid()))
if how == "tempfail":
    sys.exit(75)
if how == "nouser":
    sys.stdout.write("no such list here\n")
    sys.stdout.flush()
    sys.stderr.write("(from stderr)\n")
    sys.exit(67)
if how == "three":
    sys.exit(3)
if how == "signal":
    os.kill(os.getpid(), signal.SIGKILL)
if how == "sleep":
    time.sleep(600)
sys.exit(0)
'''


@pytest.fixture
def script(tmp_path):
    """(program path, output directory) of the recording command."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    prog = bindir / "record"
    prog.write_text(SCRIPT)
    prog.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    chown_mail(str(out))
    return str(prog), str(out)


def records(out):
    res = []
    for n in sorted(os.listdir(out)):
        if n.endswith(".json"):
            with open(os.path.join(out, n)) as f:
                res.append(json.load(f))
    return res


def wait_records(out, n, server, timeout=15):
    return poll(lambda: records(out), lambda r: len(r) >= n, scaled(timeout),
                lambda r: "%d command run(s), expected %d; log tail:\n%s" % (len(r), n, server.log_tail()))


def test_command_gets_argv_env_and_message_as_data(tern_factory, script):
    prog, out = script
    s = tern_factory(recipient_delimiter="+", aliases=[
        "bot: |%s %s ${extension} -s ${sender} --to=${recipient} ${user}@${domain} $HOME" % (prog, out),
        "team: alice, carol"])
    # What a shell would run, in the only place the network can put it: a quoted local part
    # of the sender (a recipient at a local domain must be a safe name).
    # (A local part holds at most 64 octets: short names.)
    pwned = "/tmp/t%d" % (os.getpid() % 100000)
    sender = '"$(touch %s);`touch %s`|a&b>c*\'q\'"@example.org' % (pwned, pwned)
    content = make_message("to the bot", "From a line\r\nbody\r\n")
    r, qid = s.send_one(content, sender=sender, rcpts=("bot+a.b_c-d@%s" % DOMAIN,))
    assert r.code == 250, r
    rec = wait_records(out, 1, s)[0]
    assert rec["argv"] == ["a.b_c-d", "-s", sender, "--to=bot+a.b_c-d@example.test", "bot@example.test", "$HOME"]
    env = dict(e.split("=", 1) for e in rec["env"])
    assert set(env) == {"SENDER", "RECIPIENT", "USER", "EXTENSION", "DOMAIN", "HOME", "PATH"}, env
    assert env["SENDER"] == sender and env["RECIPIENT"] == "bot+a.b_c-d@example.test"
    assert env["USER"] == "bot" and env["EXTENSION"] == "a.b_c-d" and env["DOMAIN"] == DOMAIN
    assert env["PATH"] == "/usr/bin:/bin"
    assert rec["cwd"] == "/"
    assert rec["pgid"] == rec["pid"]  # its own process group
    # stdin: tern's two lines, then the message with LF line ends, unquoted.
    stdin = rec["stdin"].encode("latin-1")
    d = Delivered(stdin)
    assert d.return_path == ("<%s>" % sender).encode()
    assert d.delivered_to == b"bot+a.b_c-d@example.test"
    assert d.content == crlf_to_lf(content)
    s.wait_log(r"%s: to=<\|bot\+a\.b_c-d@example\.test>.*dsn=2\.0\.0, status=sent \(delivered to command %s" % (qid, re.escape(prog)))
    assert not os.path.exists(pwned)
    if os.geteuid() == 0:
        import pwd
        assert os.stat(os.path.join(out, os.listdir(out)[0])).st_uid == pwd.getpwnam(MAIL_USER).pw_uid


def test_command_exit_status_decides(tern_factory, script):
    """sysexits.h: 0 sent; EX_TEMPFAIL deferred; EX_NOUSER bounced 5.1.1 with the output in
    the bounce; another status bounced 5.3.0; a signal deferred."""
    prog, out = script
    s = tern_factory(recipient_delimiter="+", retry_min="1h", retry_max="2h",
                     aliases=["bot: |%s %s ${extension}" % (prog, out)])
    cases = {"tempfail": r"dsn=4\.3\.0, status=deferred \(command %s exited with 75 \(EX_TEMPFAIL\)",
             "nouser": r"dsn=5\.1\.1, status=bounced \(command %s exited with 67 \(EX_NOUSER\): no such list here \(from stderr\)",
             "three": r"dsn=5\.3\.0, status=bounced \(command %s exited with 3\)",
             "signal": r"dsn=4\.3\.0, status=deferred \(command %s killed by signal 9\)"}
    for how, pattern in cases.items():
        r, qid = s.send_one(make_message(how), sender="carol@%s" % DOMAIN, rcpts=("bot+%s@%s" % (how, DOMAIN),))
        assert r.code == 250
        s.wait_log(r"%s: to=<\|bot\+%s@example\.test>.*%s" % (qid, how, pattern % re.escape(prog)), timeout=20)
    # The bounces reach the sender, with the command's words in the diagnostic.
    bounces = s.wait_delivered("carol", 2, timeout=20)
    text = b"\n".join(bounces)
    assert b"5.1.1" in text and b"no such list here" in text
    assert b"5.3.0" in text
    assert len(records(out)) == 4


def test_command_time_limit_kills_its_process_group(tern_factory, script):
    prog, out = script
    s = tern_factory(recipient_delimiter="+", pipe_time_limit="2s", retry_min="1h", retry_max="2h",
                     aliases=["bot: |%s %s ${extension}" % (prog, out)])
    r, qid = s.send_one(make_message("slow"), rcpts=("bot+sleep@%s" % DOMAIN,))
    assert r.code == 250
    rec = wait_records(out, 1, s)[0]
    s.wait_log(r"%s: to=<\|bot\+sleep@example\.test>.*dsn=4\.3\.0, status=deferred \(command %s did not finish within 2 s: killed" % (qid, re.escape(prog)), timeout=20)

    def alive(pid):
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().split(") ")[1][0] != "Z"
        except FileNotFoundError:
            return False
    poll(lambda: [alive(rec["pid"]), alive(rec["child"])], lambda v: v == [False, False], scaled(10),
         lambda v: "command (alive %s) or its child (alive %s) outlived the time limit" % tuple(v))


def test_command_only_from_the_aliases_file(tern_factory, script):
    prog, out = script
    s = tern_factory(aliases=["bot: |%s %s" % (prog, out)])
    with s.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<sender@example.org>", 250)
        for rcpt in ("|bot@example.test", "\"|/bin/sh -c x\"@example.test", "|/bin/sh@example.test"):
            r = c.cmd("RCPT TO:<%s>" % rcpt)
            assert r.code == 550 and r.enh == "5.1.1", (rcpt, r)
        c.cmd("QUIT")
    assert records(out) == []


def test_changed_command_waits_for_a_restart(tern_factory, script):
    """The delivery process runs only the commands of the aliases file it started with: after a
    reload that changes one, mail to it is deferred (4.3.5), never run with the old or the new
    command unseen; a restart delivers it."""
    prog, out = script
    s = tern_factory(recipient_delimiter="+", retry_min="1s", retry_max="2s",
                     aliases=["bot: |%s %s first" % (prog, out)])
    with open(s.aliases_path, "w") as f:
        f.write("bot: |%s %s second\n" % (prog, out))
    os.kill(s.proc.pid, signal.SIGHUP)
    s.wait_log(r"reload: configuration, aliases and users read again")
    r, qid = s.send_one(make_message("after reload"), rcpts=("bot@%s" % DOMAIN,))
    assert r.code == 250
    s.wait_log(r"%s: to=<\|bot@example\.test>.*dsn=4\.3\.5, status=deferred \(command not in the aliases file" % qid)
    assert records(out) == []
    s.restart()
    rec = wait_records(out, 1, s, timeout=30)[0]
    assert rec["argv"] == ["second"]
    s.wait_queue_idle()
    assert len(records(out)) == 1


# --------------------------------------------------------------------------- addresses

def test_recipient_delimiter_delivers_to_the_user(tern_factory):
    s = tern_factory(recipient_delimiter="+-", aliases=["team: alice, carol", "lists: erin"])
    with s.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<sender@example.org>", 250)
        for rcpt in ("alice+lists@example.test", "Alice+Any.Thing_x@example.test", "carol-x@example.test",
                     "lists+ext@example.test"):
            c.expect("RCPT TO:<%s>" % rcpt, 250, "2.1.5")
        r = c.cmd("RCPT TO:<nobody+x@example.test>")
        assert r.code == 550 and r.enh == "5.1.1", r
        c.expect("DATA", 354)
        c.send(b"Subject: ext\r\n\r\nhello\r\n.\r\n")
        assert c.read_reply().code == 250
        c.cmd("QUIT")
    alice = s.wait_delivered("alice", 2)
    tos = sorted(Delivered(m).delivered_to for m in alice)
    assert tos == [b"alice+any.thing_x@example.test", b"alice+lists@example.test"]
    carol = s.wait_delivered("carol", 1)
    assert Delivered(carol[0]).delivered_to == b"carol-x@example.test"
    # The alias reached with an extension: its target without it.
    erin = s.wait_delivered("erin", 1)
    assert Delivered(erin[0]).delivered_to == b"erin@example.test"
    s.wait_queue_idle()
    assert not os.path.exists(s.maildir_path("alice+lists"))


def test_catch_all_alias_only_when_nothing_else_matches(tern_factory):
    s = tern_factory(aliases=["@example.test: carol", "team: alice, dave"])
    r, _ = s.send_one(make_message("anyone"), rcpts=("whoever@example.test", "alice@example.test", "team@example.test"))
    assert r.code == 250
    s.wait_delivered("carol", 1)
    s.wait_delivered("alice", 1)  # once, though named twice
    s.wait_delivered("dave", 1)
    s.wait_queue_idle()
    assert len(s.maildir("carol")) == 1 and len(s.maildir("alice")) == 1
    assert Delivered(s.maildir("carol")[0]).delivered_to == b"carol@example.test"
    # Another local domain has no catch-all.
    with s.connect() as c:
        c.ehlo()
        c.expect("MAIL FROM:<sender@example.org>", 250)
        r = c.cmd("RCPT TO:<whoever@localhost>")
        assert r.code == 550, r
        c.cmd("QUIT")
