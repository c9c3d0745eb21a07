"""`tern sendmail` (and `sendmail` as a symlink): the command line real programs use, and the
pickup directory that makes it work while the daemon is down.

Every test runs the real binary against a real `tern serve` sharing one configuration file
(hence one spool). The sendmail side finds the configuration through -C, or through
$TERN_CONFIG where a program (PHP, git) runs `sendmail` itself.
"""
import os
import pwd
import re
import stat
import subprocess
import time

import pytest

from ternlib import TERN_BIN, Delivered, scaled

# sysexits.h
EX_OK, EX_USAGE, EX_DATAERR, EX_CONFIG = 0, 64, 65, 78

ALIASES = ["team: alice, carol", "root: alice"]


def daemon_pickup_ready(srv):
    """A running daemon makes pickup/ at start, maybe after its port is open: a sendmail
    before that would make it itself (as root here), and the daemon that then finds it
    cannot read it. Waits for the daemon's directory when the daemon runs."""
    if srv.alive():
        wait_pickup_dir(srv)


def sendmail(srv, args, data=b"", env=None, timeout=30):
    daemon_pickup_ready(srv)
    return subprocess.run([TERN_BIN, "sendmail", "-C", srv.config_path] + list(args), input=data,
                          capture_output=True, timeout=scaled(timeout), env=env)


def pickup_dir(srv):
    return os.path.join(srv.spool, "pickup")


def pickup_files(srv):
    try:
        return sorted(os.listdir(pickup_dir(srv)))
    except FileNotFoundError:
        return []


def wait_pickup_empty(srv, timeout=10):
    deadline = time.monotonic() + scaled(timeout)
    while pickup_files(srv):
        assert time.monotonic() < deadline, "pickup not emptied: %r\n%s" % (pickup_files(srv), srv.log_tail())
        time.sleep(0.05)


@pytest.fixture
def srv(tern_factory):
    return tern_factory(aliases=ALIASES)


@pytest.fixture
def link_dir(tmp_path):
    """A directory holding `sendmail` and `mailq` symlinks to the binary under test."""
    d = tmp_path / "bin"
    d.mkdir()
    for name in ("sendmail", "mailq", "newaliases"):
        os.symlink(TERN_BIN, d / name)
    return d


def env_for(srv):
    env = dict(os.environ)
    env["TERN_CONFIG"] = srv.config_path
    return env


def test_t_recipients_from_headers_bcc_removed(srv):
    msg = (b"From: Sender <sender@example.org>\n"
           b"To: Alice <alice>, \"Carol C.\" <carol@example.test>\n"
           b"Cc: (a comment) bob@example.test\n"
           b"Bcc: dave@example.test,\n erin\n"
           b"Subject: t-test-7f3a\n"
           b"\n"
           b"hello all\n")
    p = sendmail(srv, ["-t", "-i"], msg)
    assert p.returncode == EX_OK, p.stderr
    for user in ("alice", "carol", "bob", "dave", "erin"):
        got = srv.wait_delivered(user, 1)
        assert len(got) == 1
        d = Delivered(got[0])
        assert d.header("Subject") == "t-test-7f3a"
        assert d.header("Bcc") is None, "Bcc: must not reach any recipient (%s)" % user
        assert b"dave@example.test" not in d.content and b"erin" not in d.content
        assert b"hello all" in got[0]
        assert re.search(r"from userid %d \(" % os.getuid(), d.received), d.received
        assert d.return_path == ("<%s@example.test>" % pwd.getpwuid(os.getuid()).pw_name).encode()
    assert srv.maildir("frank") == []
    wait_pickup_empty(srv)


def wait_pickup_dir(srv, timeout=10):
    """The queue process makes the directory at start, maybe after the port is open."""
    deadline = time.monotonic() + scaled(timeout)
    while not os.path.isdir(pickup_dir(srv)):
        assert time.monotonic() < deadline, "no pickup directory\n" + srv.log_tail()
        time.sleep(0.05)


def test_daemon_down_pickup_collected_on_start(srv):
    wait_pickup_dir(srv)
    mode = stat.S_IMODE(os.stat(pickup_dir(srv)).st_mode)
    assert mode == 0o1733, oct(mode)
    srv.stop()
    for i in range(3):
        p = sendmail(srv, ["-i", "alice"], b"Subject: offline-%d-c41d\n\nbody %d\n" % (i, i))
        assert p.returncode == EX_OK, p.stderr
    files = pickup_files(srv)
    assert len(files) == 3 and all(re.fullmatch(r"m\.[0-9a-f]{32}", f) for f in files), files
    for f in files:
        st = os.stat(os.path.join(pickup_dir(srv), f))
        assert stat.S_IMODE(st.st_mode) == 0o604 and st.st_uid == os.getuid()
    assert srv.maildir("alice") == []
    srv.start()
    got = srv.wait_delivered("alice", 3)
    wait_pickup_empty(srv)
    srv.wait_queue_idle()
    got = srv.maildir("alice")
    subjects = sorted(Delivered(m).header("Subject") for m in got)
    assert subjects == ["offline-0-c41d", "offline-1-c41d", "offline-2-c41d"], subjects


def test_php_mail(srv, link_dir):
    script = ('$ok = mail("alice@example.test", "PHP subject 9d2e", "Hello from PHP\\n", '
              '"From: web@example.org"); exit($ok ? 0 : 3);')
    p = subprocess.run(["php", "-d", "sendmail_path=%s -t -i" % (link_dir / "sendmail"), "-r", script],
                       capture_output=True, timeout=scaled(30), env=env_for(srv))
    assert p.returncode == 0, p.stdout + p.stderr
    d = Delivered(srv.wait_delivered("alice", 1)[0])
    assert d.header("Subject") == "PHP subject 9d2e"
    assert d.header("From") == "web@example.org"
    assert b"Hello from PHP" in d.content
    assert d.header("Date") and d.header("Message-ID"), "submission fields added"


def test_git_send_email(srv, link_dir, tmp_path):
    repo = tmp_path / "repo"
    env = env_for(srv)
    env.update({"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.org",
                "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.org",
                "HOME": str(tmp_path)})
    run = lambda *a: subprocess.run(list(a), cwd=repo, env=env, capture_output=True, timeout=scaled(60), check=True)
    repo.mkdir()
    run("git", "init", "-q")
    (repo / "f.txt").write_text("one\n")
    run("git", "add", "f.txt")
    run("git", "commit", "-q", "-m", "Add f.txt for the sendmail test")
    run("git", "format-patch", "-1", "-o", str(tmp_path / "out"))
    patch = next((tmp_path / "out").iterdir())
    p = subprocess.run(["git", "send-email", "--smtp-server=%s" % (link_dir / "sendmail"),
                        "--to=alice@example.test", "--cc=carol@example.test", "--from=Dev <dev@example.org>",
                        "--envelope-sender=dev@example.org", "--confirm=never", "--suppress-cc=all", "--no-chain-reply-to", str(patch)],
                       cwd=repo, env=env, capture_output=True, timeout=scaled(60))
    assert p.returncode == 0, p.stdout + p.stderr
    for user in ("alice", "carol"):
        d = Delivered(srv.wait_delivered(user, 1)[0])
        assert d.header("Subject") == "[PATCH] Add f.txt for the sendmail test"
        assert d.return_path == b"<dev@example.org>", "git passes -f for --envelope-sender"
        assert b"+one" in d.content


def test_cron_style(srv):
    msg = ("From: root (Cron Daemon)\n"
           "To: root\n"
           "Subject: Cron <root@mx> /usr/local/bin/job\n"
           "MIME-Version: 1.0\n"
           "Content-Type: text/plain; charset=UTF-8\n"
           "Content-Transfer-Encoding: 8bit\n"
           "X-Cron-Env: <SHELL=/bin/sh>\n"
           "X-Cron-Env: <HOME=/root>\n"
           "\n"
           "job output: caf\u00e9 ok\n").encode()
    p = sendmail(srv, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "-oi", "-t"], msg)
    assert p.returncode == EX_OK, p.stderr
    d = Delivered(srv.wait_delivered("alice", 1)[0])  # root is an alias of alice
    assert d.header("Subject") == "Cron <root@mx> /usr/local/bin/job"
    assert d.header("From") == "root (Cron Daemon)", "an existing From: is kept"
    assert "job output: caf\u00e9 ok".encode() in d.content


def test_f_and_F_and_lone_dot(srv):
    p = sendmail(srv, ["-f", "bounces@example.org", "-F", 'Jane "JD" Doe', "alice"],
                 b"Subject: fF-5b1c\n\nfirst line\n.\nnot this line\n")
    assert p.returncode == EX_OK, p.stderr
    d = Delivered(srv.wait_delivered("alice", 1)[0])
    assert d.return_path == b"<bounces@example.org>"
    assert d.header("From") == '"Jane \\"JD\\" Doe" <bounces@example.org>'
    assert d.header("Date") and re.fullmatch(r"<\S+@mx\.test>", d.header("Message-ID"))
    assert b"first line" in d.content and b"not this line" not in d.content
    # With -i the lone dot is content.
    p = sendmail(srv, ["-i", "carol"], b"Subject: dot-5b1c\n\nbefore\n.\nafter\n")
    assert p.returncode == EX_OK, p.stderr
    d = Delivered(srv.wait_delivered("carol", 1)[0])
    assert b"before\n.\nafter" in d.content
    # Without -f the sender is the user's login at the first local domain, and From: names it.
    p = sendmail(srv, ["-F", "Job Runner", "frank"], b"Subject: nof\n\nx\n")
    assert p.returncode == EX_OK, p.stderr
    login = pwd.getpwuid(os.getuid()).pw_name
    d = Delivered(srv.wait_delivered("frank", 1)[0])
    assert d.return_path == ("<%s@example.test>" % login).encode()
    assert d.header("From") == '"Job Runner" <%s@example.test>' % login


def _read_reply(f):
    lines = []
    while True:
        line = f.readline()
        assert line, "sendmail -bs closed early; replies so far %r" % lines
        lines.append(line)
        if line[3:4] != b"-":
            return lines


def bs_dialogue(srv, steps, args=()):
    """Runs `sendmail -bs`: reads the greeting, then sends each (line, code) of steps and
    checks the reply's code; returns {line: reply lines}. sendmail must exit 0."""
    daemon_pickup_ready(srv)
    p = subprocess.Popen([TERN_BIN, "sendmail", "-C", srv.config_path, "-bs", *args],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    replies = {}
    try:
        replies[None] = _read_reply(p.stdout)
        for line, code in steps:
            p.stdin.write(line + b"\r\n")
            p.stdin.flush()
            r = _read_reply(p.stdout)
            assert r[-1][:3] == code, (line, r)
            replies[line] = r
        assert p.wait(timeout=scaled(10)) == 0
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    return replies


def test_bs_smtp_on_stdin(srv):
    data = b"Subject: bs-31a7\r\n\r\nvia -bs\r\n..leading dot\r\n."
    r = bs_dialogue(srv, [
        (b"EHLO localhost", b"250"),
        (b"MAIL FROM:<script@example.org>", b"250"),
        (b"RCPT TO:<alice@example.test>", b"250"),
        (b"RCPT TO:<someone@remote.example>", b"250"),  # relaying is allowed to local users
        (b"DATA", b"354"),
        (data, b"250"),
        (b"QUIT", b"221")])
    assert r[None][0].startswith(b"220 ")
    assert not any(b"AUTH" in l for l in r[b"EHLO localhost"]), "a local user needs no AUTH"
    assert b"queued as" in r[data][-1]
    d = Delivered(srv.wait_delivered("alice", 1)[0])
    assert d.header("Subject") == "bs-31a7"
    assert d.return_path == b"<script@example.org>"
    assert b"via -bs\n.leading dot" in d.content
    assert d.header("Date") and d.header("Message-ID")
    assert re.search(r"from userid %d \(" % os.getuid(), d.received), d.received


def test_bad_recipient_nothing_queued(srv):
    srv.stop()
    for args in (["alice", "bad address@@x"], ["-t"]):
        data = b"To: ok@example.test, <user@bad..domain>\n\nx\n" if args == ["-t"] else b"Subject: x\n\nx\n"
        p = sendmail(srv, args, data)
        assert p.returncode == EX_DATAERR, (args, p.returncode, p.stderr)
        assert b"address" in p.stderr
    p = sendmail(srv, ["-f", "no way@@", "alice"], b"x\n")
    assert p.returncode == EX_DATAERR
    assert pickup_files(srv) == []


def _good_file(name_hex, subject):
    return b"tern-pickup 1\nrcpt alice@example.test\n\nSubject: " + subject + b"\n\nok\n"


def test_hostile_pickup_files_set_aside(srv, tmp_path):
    wait_pickup_dir(srv)
    d = pickup_dir(srv)
    bad = {
        "m.garbage": os.urandom(3000),
        "m.badaddr": b"tern-pickup 1\nrcpt not an address\n\nSubject: x\n\nx\n",
        "m.norcpt": b"tern-pickup 1\nfrom a@example.org\n\nSubject: x\n\nx\n",
        "m.version": b"tern-pickup 9\nrcpt alice@example.test\n\nx\n",
        "m.oversize": b"tern-pickup 1\nrcpt alice@example.test\n\n" + b"x" * 200 + (b"y" * 900 + b"\n") * 1300,
        "m.header-inject": b"tern-pickup 1\nname Evil\rBcc: x\nrcpt alice@example.test\n\nx\n",
        "m.longline": b"tern-pickup 1\nrcpt alice@example.test\n\n" + b"z" * 5000 + b"\n",
    }
    # Written as t.* first so the daemon sees each complete.
    for name, data in bad.items():
        with open(os.path.join(d, "t" + name[1:]), "wb") as f:
            f.write(data)
        os.rename(os.path.join(d, "t" + name[1:]), os.path.join(d, name))
    os.symlink("/etc/passwd", os.path.join(d, "m.symlink"))
    os.mkfifo(os.path.join(d, "m.fifo"))
    target = tmp_path / "secret"
    target.write_bytes(_good_file("", b"hardlinked"))
    os.link(target, os.path.join(d, "m.hardlink"))
    names = list(bad) + ["m.symlink", "m.fifo", "m.hardlink"]
    # And good ones after them: they are delivered all the same.
    for i in range(2):
        p = sendmail(srv, ["-i", "alice"], b"Subject: good-%d-88aa\n\nfine\n" % i)
        assert p.returncode == EX_OK, p.stderr
    got = srv.wait_delivered("alice", 2)
    for n in names:
        srv.wait_log(r"pickup: %s: .*(moved to pickup-bad|removed)" % re.escape(n))
    wait_pickup_empty(srv)
    assert sorted(os.listdir(os.path.join(srv.spool, "pickup-bad"))) == sorted(names)
    srv.wait_queue_idle()
    got = srv.maildir("alice")
    assert sorted(Delivered(m).header("Subject") for m in got) == ["good-0-88aa", "good-1-88aa"]
    assert target.read_bytes() == _good_file("", b"hardlinked"), "the linked file is not touched"
    assert srv.alive()


def test_usage_errors_and_modes(srv, link_dir):
    for args in (["-Z"], ["-bd"], ["-f"], ["-bs", "alice"], ["-bp", "-t"]):
        p = sendmail(srv, args)
        assert p.returncode == EX_USAGE, (args, p.returncode, p.stderr)
    p = sendmail(srv, [], b"Subject: x\n\nno recipient\n")
    assert p.returncode == EX_USAGE and b"no recipients" in p.stderr
    p = sendmail(srv, ["-bi"])
    assert p.returncode == EX_OK and p.stdout == b""
    p = subprocess.run([TERN_BIN, "sendmail", "-C", "/nonexistent/tern.conf", "alice"], input=b"x\n",
                       capture_output=True, timeout=scaled(10))
    assert p.returncode == EX_CONFIG
    p = subprocess.run([str(link_dir / "newaliases")], capture_output=True, env=env_for(srv), timeout=scaled(10))
    assert p.returncode == EX_OK
    # As `sendmail` through the symlink, the configuration from $TERN_CONFIG.
    p = subprocess.run([str(link_dir / "sendmail"), "-oi", "--", "carol"], input=b"Subject: link-0e4d\n\nx\n",
                       capture_output=True, env=env_for(srv), timeout=scaled(30))
    assert p.returncode == EX_OK, p.stderr
    assert Delivered(srv.wait_delivered("carol", 1)[0]).header("Subject") == "link-0e4d"
    # -bp is mailq, -q a flush, through the daemon's control socket.
    p = sendmail(srv, ["-bp"])
    assert p.returncode == EX_OK, p.stderr
    q = subprocess.run([str(link_dir / "mailq")], capture_output=True, env=env_for(srv), timeout=scaled(10))
    assert q.returncode == EX_OK and q.stdout == p.stdout
    p = sendmail(srv, ["-q"])
    assert p.returncode == EX_OK, p.stderr


def test_unprivileged_user(tmp_path):
    """A user who is not the daemon's: the pickup directory lets them drop a file but not list
    the directory, and the daemon records their uid, whatever -f says."""
    import shutil
    import tempfile
    from ternlib import TernServer
    nobody = pwd.getpwnam("nobody")
    base = tempfile.mkdtemp(prefix="tern-sendmail-", dir="/tmp")
    os.chmod(base, 0o755)
    srv = TernServer(os.path.join(base, "srv"), aliases=ALIASES)
    os.chmod(srv.base, 0o755)
    os.chmod(srv.config_path, 0o644)
    as_nobody = ["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid, "--clear-groups"]
    try:
        srv.start()
        wait_pickup_dir(srv)
        assert stat.S_IMODE(os.stat(srv.spool).st_mode) & 0o011 == 0o011, "spool_dir searchable"
        p = subprocess.run(as_nobody + [TERN_BIN, "sendmail", "-C", srv.config_path, "-t", "-i"],
                           input=b"To: alice\nSubject: nobody-6e0b\n\nfrom a plain user\n",
                           capture_output=True, timeout=scaled(30))
        assert p.returncode == EX_OK, p.stderr
        p = subprocess.run(as_nobody + [TERN_BIN, "sendmail", "-C", srv.config_path, "-f", "ceo@example.org", "carol"],
                           input=b"Subject: forged-6e0b\n\nx\n", capture_output=True, timeout=scaled(30))
        assert p.returncode == EX_OK, p.stderr
        d = Delivered(srv.wait_delivered("alice", 1)[0])
        assert d.header("Subject") == "nobody-6e0b"
        assert re.search(r"from userid %d \(nobody\)" % nobody.pw_uid, d.received), d.received
        assert d.return_path == b"<nobody@example.test>"
        assert d.header("From") is not None and "nobody@example.test" in d.header("From")
        d = Delivered(srv.wait_delivered("carol", 1)[0])
        assert d.return_path == b"<ceo@example.org>"
        assert re.search(r"from userid %d \(nobody\)" % nobody.pw_uid, d.received), d.received
        ls = subprocess.run(as_nobody + ["ls", pickup_dir(srv)], capture_output=True, timeout=scaled(10))
        assert ls.returncode != 0, "others cannot list the pickup directory"
        assert srv.sanitizer_report() is None
    finally:
        srv.stop()
        report = srv.sanitizer_report()
        shutil.rmtree(base, ignore_errors=True)
    assert report is None, report


def test_bp_lists_the_queue_and_q_delivers_deferred_mail(tern_factory, link_dir, sink_factory):
    """-bp shows what `tern queue list` shows (a deferred message, its recipient and error);
    -q makes the daemon try it now instead of after the hour-long retry delay."""
    from ternlib import free_port
    port = free_port()
    srv = tern_factory(aliases=ALIASES, relay_networks="127.0.0.0/8", retry_min="1h", retry_max="2h",
                       extra_lines=["route = remote.example 127.0.0.1:%d" % port])
    p = sendmail(srv, ["-i", "-f", "carol@example.test", "bob@remote.example"], b"Subject: bp-5a1c\n\nx\n")
    assert p.returncode == EX_OK, p.stderr
    srv.wait_log(r"to=<bob@remote\.example>.*status=deferred", timeout=scaled(15))
    p = sendmail(srv, ["-bp"])
    assert p.returncode == EX_OK, p.stderr
    text = p.stdout.decode()
    qids = re.findall(r"^([0-9A-F]{16})[ *!]", text, re.M)
    assert len(qids) == 1, text
    assert "carol@example.test" in text and "bob@remote.example" in text, text
    q = subprocess.run([str(link_dir / "mailq")], capture_output=True, env=env_for(srv), timeout=scaled(10))
    assert q.returncode == EX_OK and q.stdout == p.stdout
    sink = sink_factory("127.0.0.1", port)
    p = sendmail(srv, ["-q"])
    assert p.returncode == EX_OK, p.stderr
    srv.wait_log(r"%s: removed" % qids[0])
    assert len(sink.messages) == 1
    p = sendmail(srv, ["-bp"])
    assert p.returncode == EX_OK and re.search(r"empty", p.stdout.decode(), re.I), p.stdout


def _header_and_body(raw):
    """The delivered file split at its first empty line (LF line ends in a Maildir)."""
    head, sep, body = raw.partition(b"\n\n")
    assert sep, raw
    return head, body


def test_message_without_a_header_gets_one_before_its_text(srv):
    """`echo text | sendmail user`: the text is body; Date/Message-ID/From go above an empty
    line, not after the text."""
    p = sendmail(srv, ["-i", "alice"], b"disk full on /var\nsecond line: not a header\n")
    assert p.returncode == EX_OK, p.stderr
    raw = srv.wait_delivered("alice", 1)[0]
    head, body = _header_and_body(raw)
    assert body == b"disk full on /var\nsecond line: not a header\n", raw
    for field in (b"\nDate: ", b"\nMessage-ID: <", b"\nFrom: "):
        assert field in b"\n" + head, raw


def test_bs_header_less_message_and_bare_postmaster(tern_factory):
    """-bs runs the submission session: a message with no header gets its fields above an
    empty line, and RCPT TO:<postmaster> (no domain, RFC 5321 §4.1.1.3) is delivered."""
    srv = tern_factory(aliases=ALIASES + ["postmaster: carol"])
    bs_dialogue(srv, [
        (b"EHLO localhost", b"250"),
        (b"MAIL FROM:<script@example.test>", b"250"),
        (b"RCPT TO:<postmaster>", b"250"),
        (b"DATA", b"354"),
        (b"just text, no header\r\n.", b"250"),
        (b"QUIT", b"221")], args=["-FName\nInjected: x"])
    raw = srv.wait_delivered("carol", 1)[0]
    head, body = _header_and_body(raw)
    assert body == b"just text, no header\n", raw
    assert b"\nDate: " in b"\n" + head and b"\nMessage-ID: <" in b"\n" + head, raw
    assert b"\nInjected:" not in b"\n" + raw, raw
    assert not os.listdir(os.path.join(srv.spool, "pickup-bad"))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make pickup/ root's")
def test_pickup_directory_made_by_root_is_given_to_the_daemon(srv):
    """A root cron job that ran sendmail before tern ever started made pickup/ root's: at start
    tern gives it to its user, so it can remove what it queued (else: queued again and again)."""
    srv.stop()
    pdir = pickup_dir(srv)
    os.chown(pdir, 0, 0)
    p = sendmail(srv, ["-i", "alice"], b"Subject: root-pickup-7c2d\n\nx\n")
    assert p.returncode == EX_OK, p.stderr
    srv.start()
    srv.wait_delivered("alice", 1)
    wait_pickup_empty(srv)
    assert os.stat(pdir).st_uid == pwd.getpwnam("tern").pw_uid
    assert stat.S_IMODE(os.stat(pdir).st_mode) == 0o1733
    srv.wait_queue_idle()  # queued again and again would show here
    assert len(srv.maildir("alice")) == 1


def test_unknown_local_recipient_bounces_to_the_sender(srv):
    """cron's MAILTO=typo: the message was accepted (exit 0), so the sender hears of the
    unknown recipient in a delivery status notification; the known one gets the message."""
    p = sendmail(srv, ["-i", "-f", "alice@example.test", "nosuchuser", "carol"], b"Subject: typo-4e1f\n\nx\n")
    assert p.returncode == EX_OK, p.stderr
    d = Delivered(srv.wait_delivered("carol", 1)[0])
    assert d.header("Subject") == "typo-4e1f"
    dsn = srv.wait_delivered("alice", 1)[0]
    assert b"nosuchuser@example.test" in dsn and b"5.1.1" in dsn, dsn
    assert b"multipart/report" in dsn and b"typo-4e1f" in dsn, dsn
    # Only an unknown recipient: bounced too, not set aside in silence.
    p = sendmail(srv, ["-i", "-f", "alice@example.test", "ghost"], b"Subject: typo-only-4e1f\n\nx\n")
    assert p.returncode == EX_OK, p.stderr
    dsns = srv.wait_delivered("alice", 2)
    assert any(b"ghost@example.test" in m and b"typo-only-4e1f" in m for m in dsns), dsns
    assert not os.listdir(os.path.join(srv.spool, "pickup-bad"))
    srv.wait_queue_idle()
    assert len(srv.maildir("alice")) == 2 and len(srv.maildir("carol")) == 1


def test_unknown_sender_and_recipient_reach_postmaster(srv):
    """A sender at a local domain that has no mailbox (root@, a script's made-up From) and an
    unknown recipient: the notification cannot be delivered either, so postmaster gets the
    double bounce (with the notification's header, which names the sender); nothing disappears
    with only a log line."""
    p = sendmail(srv, ["-i", "-f", "nobody-here@example.test", "ghost"],
                 b"Subject: double-9c2d\n\nx\n")
    assert p.returncode == EX_OK, p.stderr
    srv.wait_log(r"postmaster non-delivery notification", timeout=30)
    pm = srv.wait_find("nobody-here@example.test", timeout=30)
    assert len(pm) == 1 and "/postmaster/" in pm[0][0], [path for path, _ in pm]
    assert b"multipart/report" in pm[0][1] and b"5.1.1" in pm[0][1], pm[0][1]
