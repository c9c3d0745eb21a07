"""`tern send`: the submission client, run as a real process against a real `tern serve`
(plaintext mx, STARTTLS + AUTH on submission, implicit TLS on smtps) and against tiny Python
servers where tern cannot misbehave on demand (no STARTTLS, a 4xx). Checks what lands in the
Maildir, the exit status (sysexits.h), what is printed, and what goes over the wire."""
import base64
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from ternlib import PASSWORDS, SANITIZER_MARKERS, TERN_BIN, Delivered, crlf_to_lf, free_port, make_cert, scaled

EX_USAGE, EX_DATAERR, EX_UNAVAILABLE, EX_TEMPFAIL, EX_PROTOCOL, EX_NOPERM = 64, 65, 69, 75, 76, 77


def tern_send(*args, input=None, env=None, timeout=30):
    """Runs `tern send ARGS`; returns the CompletedProcess (stdout, stderr as text)."""
    e = dict(os.environ)
    e.pop("TERN_PASSWORD", None)
    e.update(env or {})
    p = subprocess.run([TERN_BIN, "send"] + [str(a) for a in args],
                       input=input if input is not None else b"", capture_output=True,
                       timeout=scaled(timeout), env=e)
    for m in SANITIZER_MARKERS:  # tern send itself, under ASan+UBSan
        assert m.encode() not in p.stderr, p.stderr.decode("utf-8", "replace")
    return p


def out(p):
    return (p.stdout + p.stderr).decode("utf-8", "replace")


def server_arg(server, listener="mx"):
    return "127.0.0.1:%d" % server.ports[listener]


def password_file(tmp_path, user="alice"):
    path = tmp_path / "pw"
    path.write_text(PASSWORDS[user] + "\n")
    return path


def one_delivered(server, marker):
    (_, raw), = server.wait_find(marker)
    return Delivered(raw)


# --------------------------------------------------------------------------- plaintext, mx


def test_plain_message_lands_with_subject_body_headers(tls_server):
    p = tern_send("-s", server_arg(tls_server), "-f", "sender@example.org", "-t", "alice@example.test",
                  "--subject", "plain-subject-7d1", "--body", "first line\n.dotted line\nlast line",
                  "--header", "X-Send-Test: marker-7d1", "--header", "X-Other:  two  spaces")
    assert p.returncode == 0, out(p)
    # The server's final reply, with its queue id, on stdout.
    assert re.match(r"^250 2\.0\.0 .*queued as \S+\n$", p.stdout.decode()), out(p)
    d = one_delivered(tls_server, "marker-7d1")
    assert d.return_path == b"<sender@example.org>"
    assert d.header("Subject") == "plain-subject-7d1"
    assert d.header("X-Send-Test") == "marker-7d1"
    assert b"\nX-Other:  two  spaces\n" in d.content  # as given
    assert d.header("From") == "<sender@example.org>"
    assert d.header("To") == "<alice@example.test>"
    assert re.match(r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$", d.header("Date"))
    assert re.match(r"^<[^<>@\s]+@[^<>@\s]+>$", d.header("Message-ID"))
    # The body as given, the dot line intact (dot-stuffed on the wire, unstuffed by the server).
    assert d.content.split(b"\n\n", 1)[1] == b"first line\n.dotted line\nlast line\n"


def test_positional_recipients_and_body_from_stdin(tls_server):
    body = b"piped body marker-b44\n..two dots\n.\nafter a lone dot\n"
    p = tern_send("-s", server_arg(tls_server), "-f", "sender@example.org", "--subject", "stdin-b44",
                  "carol@example.test", "<dave@example.test>", input=body)
    assert p.returncode == 0, out(p)
    found = tls_server.wait_find("marker-b44", n=2)
    assert sorted(Delivered(raw).delivered_to for _, raw in found) == [b"carol@example.test", b"dave@example.test"]
    d = Delivered(found[0][1])
    assert d.header("To") == "<carol@example.test>, <dave@example.test>"
    assert d.content.split(b"\n\n", 1)[1] == body


def test_body_file(tls_server, tmp_path):
    f = tmp_path / "body.txt"
    f.write_bytes(b"from a file marker-c19\r\nsecond\r\n")
    p = tern_send("-s", server_arg(tls_server), "-f", "sender@example.org", "-t", "erin@example.test",
                  "--body-file", f)
    assert p.returncode == 0, out(p)
    d = one_delivered(tls_server, "marker-c19")
    assert d.content.split(b"\n\n", 1)[1] == b"from a file marker-c19\nsecond\n"
    assert d.header("Subject") is None  # none given, none made up


DATA = (b"From: Someone <someone@example.org>\n"
        b"To: alice@example.test\n"
        b"Subject: data-as-is %s\n"
        b"X-Folded: one\n"
        b"\ttwo\n"
        b"\n"
        b".leading dot\n"
        b"..two leading dots\n"
        b".\n"
        b"a line after a lone dot\n"
        b". space after dot\n"
        b"end\n")


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_data_byte_for_byte(tls_server, tmp_path, source):
    marker = b"marker-data-" + source.encode()
    msg = DATA % marker
    if source == "file":
        f = tmp_path / "msg.eml"
        f.write_bytes(msg)  # LF line ends: sent as CRLF
        p = tern_send("-s", server_arg(tls_server), "-f", "sender@example.org", "--data", f, "alice@example.test")
    else:
        p = tern_send("-s", server_arg(tls_server), "-f", "sender@example.org", "--data", "-", "alice@example.test",
                      input=msg.replace(b"\n", b"\r\n"))  # CRLF already: kept
    assert p.returncode == 0, out(p)
    d = one_delivered(tls_server, marker)
    # Nothing added, nothing lost: no generated headers, the lone dot did not end the message.
    assert d.content == msg
    assert d.header("Message-ID") is None and d.header("Date") is None


def test_data_excludes_generated_parts():
    p = tern_send("--data", "-", "--subject", "x", "alice@example.test")
    assert p.returncode == EX_USAGE, out(p)


# --------------------------------------------------------------------------- TLS and AUTH


def test_starttls_auth_on_submission(tls_server, tmp_path):
    p = tern_send("-s", server_arg(tls_server, "submission"), "--starttls", "--insecure",
                  "--auth", "alice", "--password-file", password_file(tmp_path),
                  "-f", "alice@example.test", "-t", "carol@example.test", "--subject", "sub-e0a")
    assert p.returncode == 0, out(p)
    assert p.stdout.startswith(b"250 "), out(p)
    d = one_delivered(tls_server, "sub-e0a")
    assert re.search(r"\bwith ESMTPSA\b", d.received), d.received


def test_implicit_tls_on_smtps(tls_server):
    p = tern_send("-s", server_arg(tls_server, "smtps"), "--tls", "--insecure", "--auth", "bob@example.test",
                  "-f", "bob@example.test", "-t", "alice@example.test", "--subject", "smtps-41f",
                  env={"TERN_PASSWORD": PASSWORDS["bob@example.test"]})
    assert p.returncode == 0, out(p)
    d = one_delivered(tls_server, "smtps-41f")
    assert re.search(r"\bwith ESMTPSA\b", d.received), d.received


def test_smtps_without_auth_refused_by_policy(tls_server):
    p = tern_send("-s", server_arg(tls_server, "smtps"), "--tls", "--insecure", "-f", "alice@example.test",
                  "-t", "carol@example.test", "--subject", "noauth-9b2")
    assert p.returncode == EX_NOPERM, out(p)
    assert "530" in out(p)
    tls_server.wait_queue_idle()
    assert tls_server.find("noauth-9b2") == []


def test_wrong_password(tls_server):
    p = tern_send("-s", server_arg(tls_server, "submission"), "--starttls", "--insecure", "--auth", "alice",
                  "-f", "alice@example.test", "-t", "carol@example.test", "--subject", "badpw-0c3",
                  env={"TERN_PASSWORD": "not-the-password"}, timeout=60)
    assert p.returncode == EX_NOPERM, out(p)
    assert re.search(r"\b535 5\.7\.8\b", out(p)), out(p)
    tls_server.wait_queue_idle()
    assert tls_server.find("badpw-0c3") == []


def test_auth_needs_tls_and_a_password(tls_server, tmp_path):
    base = ["-s", server_arg(tls_server, "submission"), "-t", "carol@example.test"]
    p = tern_send(*base, "--auth", "alice", env={"TERN_PASSWORD": "x"})
    assert p.returncode == EX_USAGE and "--starttls" in out(p), out(p)
    p = tern_send(*base, "--starttls", "--insecure", "--auth", "alice")
    assert p.returncode == EX_USAGE and "TERN_PASSWORD" in out(p), out(p)
    p = tern_send(*base, "--starttls", "--insecure", "--auth", "alice", "--password", "x")
    assert p.returncode == EX_USAGE, out(p)  # there is no such option


def test_verbose_shows_dialogue_not_secrets(tls_server, tmp_path):
    pw = PASSWORDS["alice"]
    p = tern_send("-v", "-s", server_arg(tls_server, "submission"), "--starttls", "--insecure",
                  "--auth", "alice", "--password-file", password_file(tmp_path),
                  "-f", "alice@example.test", "-t", "carol@example.test", "--subject", "verbose-5aa")
    assert p.returncode == 0, out(p)
    text = out(p)
    lines = text.splitlines()
    assert lines.count("C: EHLO %s" % socket.gethostname()) == 2, text  # before and after STARTTLS
    assert "C: STARTTLS" in lines and any(l.startswith("S: 220 ") for l in lines), text
    assert any(l.startswith("S: 250") for l in lines), text
    assert any(l.startswith("S: 235 ") for l in lines), text
    assert "C: AUTH PLAIN ********" in lines, text
    assert "C: QUIT" in lines, text
    cred = base64.b64encode(b"\0alice\0" + pw.encode()).decode()
    assert pw not in text and cred not in text, text
    # No stray partial secret either: the only AUTH line is the masked one.
    assert [l for l in lines if "AUTH PLAIN" in l and l.startswith("C:")] == ["C: AUTH PLAIN ********"]


# --------------------------------------------------------------------------- certificates


def test_self_signed_certificate_not_trusted_by_default(tls_server):
    for listener, mode in (("submission", "--starttls"), ("smtps", "--tls")):
        p = tern_send("-s", server_arg(tls_server, listener), mode, "-f", "sender@example.org",
                      "-t", "alice@example.test", "--subject", "unverified-71d")
        assert p.returncode == EX_UNAVAILABLE, out(p)
        assert "certificate" in out(p), out(p)
    tls_server.wait_queue_idle()
    assert tls_server.find("unverified-71d") == []


@pytest.fixture(scope="module")
def localhost_server(module_tls_factory, tmp_path_factory):
    """A server whose certificate names "localhost" (a name that resolves here)."""
    cert, key = make_cert(tmp_path_factory.mktemp("lhcert"), "localhost")
    s = module_tls_factory(tls_cert=cert, tls_key=key)
    s.cert = cert
    return s


def test_cafile_trusts_the_server(localhost_server, certs):
    s = localhost_server
    for listener, mode in (("submission", "--starttls"), ("smtps", "--tls")):
        args = ["-s", "localhost:%d" % s.ports[listener], mode, "-f", "alice@example.test",
                "-t", "carol@example.test", "--subject", "cafile-%s-3e8" % listener]
        args += ["--auth", "alice"]
        p = tern_send(*args, "--cafile", s.cert, env={"TERN_PASSWORD": PASSWORDS["alice"]})
        assert p.returncode == 0, out(p)
        # Another CA: refused.
        p = tern_send(*args, "--cafile", certs["other.test"][0], env={"TERN_PASSWORD": PASSWORDS["alice"]})
        assert p.returncode == EX_UNAVAILABLE, out(p)
        assert "certificate" in out(p), out(p)
    s.wait_find("cafile-submission-3e8")
    s.wait_find("cafile-smtps-3e8")


def test_cafile_checks_the_name(localhost_server):
    # The right CA, but 127.0.0.1 is not a name the certificate carries.
    s = localhost_server
    p = tern_send("-s", "127.0.0.1:%d" % s.ports["submission"], "--starttls", "--cafile", s.cert,
                  "-t", "carol@example.test", "--subject", "wrongname-2c4")
    assert p.returncode == EX_UNAVAILABLE, out(p)
    assert "certificate" in out(p), out(p)


# --------------------------------------------------------------------------- refusals


def test_unknown_recipient_reported_others_delivered(tls_server):
    p = tern_send("-s", server_arg(tls_server), "-f", "sender@example.org", "-t", "alice@example.test",
                  "-t", "nosuch-user@example.test", "-t", "frank@example.test", "--subject", "partial-8f0")
    assert p.returncode == EX_DATAERR, out(p)
    assert p.stdout.startswith(b"250 "), out(p)  # the message went to the others
    refused = [l for l in p.stderr.decode().splitlines() if l.startswith("tern send: <")]
    assert len(refused) == 1, out(p)
    assert refused[0].startswith("tern send: <nosuch-user@example.test>: ") and " 550 5.1.1 " in refused[0], out(p)
    found = tls_server.wait_find("partial-8f0", n=2)
    assert sorted(Delivered(raw).delivered_to for _, raw in found) == [b"alice@example.test", b"frank@example.test"]


def test_connection_refused():
    p = tern_send("-s", "127.0.0.1:%d" % free_port(), "-t", "alice@example.test", "--body", "x")
    assert p.returncode == EX_UNAVAILABLE, out(p)
    assert "Connection refused" in out(p), out(p)


def test_unknown_host():
    p = tern_send("-s", "no-such-host.invalid:25", "-t", "alice@example.test", "--body", "x")
    assert p.returncode == 68, out(p)  # EX_NOHOST


@pytest.mark.parametrize("args", [
    [],  # no recipient
    ["-t", "a@b", "--tls", "--starttls"],
    ["-t", "a@b\r\nRSET"],
    ["-t", "a@b", "--header", "NoColon"],
    ["-t", "a@b", "--header", "X: a\r\nBcc: evil@example.org"],
    ["-t", "a@b", "--subject", "alert\nBcc: evil@example.org"],
    ["-t", "a@b", "--server", "127.0.0.1:"],
    ["-t", "a@b", "--timeout", "0"],
    ["-t", "a@b", "--bogus"],
])
def test_usage_errors(args):
    p = tern_send(*args)
    assert p.returncode == EX_USAGE, out(p)


# --------------------------------------------------------------------------- a scripted peer


class FakeServer:
    """One SMTP session on a free loopback port, scripted: `ehlo` is the list of EHLO
    keywords, `replies` maps a verb to the reply sent to it (default "250 2.0.0 ok"; None: close
    the connection instead, "HANG": answer nothing more). Everything the client sends is kept in
    self.received."""

    def __init__(self, ehlo=("PIPELINING",), replies=None, greeting="220 fake.test ESMTP"):
        self.greeting = greeting
        self.ehlo = list(ehlo)
        self.replies = dict(replies or {})
        self.received = b""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(scaled(20))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.settimeout(scaled(20))
        buf = b""

        def line():
            nonlocal buf
            while b"\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    raise EOFError
                self.received += chunk
                buf += chunk
            i = buf.index(b"\n") + 1
            l, buf = buf[:i], buf[i:]
            return l

        try:
            conn.sendall(self.greeting.encode() + b"\r\n")
            while True:
                l = line()
                verb = l.split(b" ", 1)[0].split(b":", 1)[0].strip().upper().decode("latin-1")
                if verb in self.replies and self.replies[verb] is None:
                    break
                if self.replies.get(verb) == "HANG":
                    while True:
                        line()  # until the client gives up and closes
                if verb == "EHLO":
                    kws = ["fake.test"] + self.ehlo
                    conn.sendall("".join("250%s%s\r\n" % ("-" if i < len(kws) - 1 else " ", k)
                                         for i, k in enumerate(kws)).encode())
                elif verb == "DATA":
                    conn.sendall(self.replies.get("DATA", "354 go").encode() + b"\r\n")
                    if self.replies.get("DATA", "354").startswith("354"):
                        while line() != b".\r\n":
                            pass
                        conn.sendall(self.replies.get("DOT", "250 2.0.0 queued as FAKE1").encode() + b"\r\n")
                elif verb == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    break
                else:
                    conn.sendall(self.replies.get(verb, "250 2.0.0 ok").encode() + b"\r\n")
        except (EOFError, OSError):
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()
        self.thread.join(scaled(10))


def test_starttls_required_but_not_offered_sends_nothing_in_the_clear(tmp_path):
    fake = FakeServer(ehlo=["PIPELINING", "AUTH PLAIN LOGIN", "8BITMIME"])
    try:
        p = tern_send("-s", "127.0.0.1:%d" % fake.port, "--starttls", "--auth", "alice",
                      "--password-file", password_file(tmp_path), "-f", "alice@example.test",
                      "-t", "carol@example.test", "--subject", "secret-subject-1a2", "--body", "secret body")
        fake.thread.join(scaled(10))
    finally:
        fake.close()
    assert p.returncode == EX_PROTOCOL, out(p)
    assert "STARTTLS" in out(p), out(p)
    # The EHLO and nothing more: no AUTH, no envelope, no content.
    assert re.fullmatch(rb"EHLO \S+\r\n", fake.received), fake.received


def test_temporary_failure_is_75():
    fake = FakeServer(replies={"RCPT": "451 4.3.0 try again later"})
    try:
        p = tern_send("-s", "127.0.0.1:%d" % fake.port, "-f", "a@example.org", "-t", "b@example.test", "--body", "x")
        fake.thread.join(scaled(10))
    finally:
        fake.close()
    assert p.returncode == EX_TEMPFAIL, out(p)
    assert "451 4.3.0 try again later" in out(p), out(p)
    # With no recipient accepted the pipelined DATA gets an empty message, not the content.
    assert fake.received.split(b"DATA\r\n", 1)[1] == b".\r\nQUIT\r\n", fake.received


def test_data_dot_stuffed_on_the_wire():
    fake = FakeServer()
    try:
        p = tern_send("-s", "127.0.0.1:%d" % fake.port, "-f", "a@example.org", "-t", "b@example.test",
                      "--data", "-", input=b"Subject: s\n\n.one\n.\nend")
        fake.thread.join(scaled(10))
    finally:
        fake.close()
    assert p.returncode == 0, out(p)
    assert p.stdout == b"250 2.0.0 queued as FAKE1\n", out(p)
    content = fake.received.split(b"DATA\r\n", 1)[1]
    assert content.startswith(b"Subject: s\r\n\r\n..one\r\n..\r\nend\r\n.\r\n"), content


def run_fake(fake, *args, **kw):
    try:
        p = tern_send("-s", "127.0.0.1:%d" % fake.port, "-f", "a@example.org", "-t", "b@example.test",
                      "--body", "x", *args, **kw)
        fake.thread.join(scaled(10))
    finally:
        fake.close()
    return p


def test_refused_at_greeting_is_69():
    fake = FakeServer(greeting="554 5.3.2 not today")
    p = run_fake(fake)
    assert p.returncode == EX_UNAVAILABLE, out(p)
    assert "554 5.3.2 not today" in out(p), out(p)


def test_connection_lost_mid_session_is_69():
    fake = FakeServer(ehlo=[], replies={"RCPT": None})  # no PIPELINING: one command at a time
    p = run_fake(fake)
    assert p.returncode == EX_UNAVAILABLE, out(p)
    assert "lost connection" in out(p), out(p)
    assert b"DATA" not in fake.received


def test_timeout_is_69():
    fake = FakeServer(replies={"MAIL": "HANG"})
    t0 = time.monotonic()
    p = run_fake(fake, "--timeout", "1")
    assert p.returncode == EX_UNAVAILABLE, out(p)
    assert "timeout" in out(p), out(p)
    assert time.monotonic() - t0 < scaled(10)


def test_utf8_subject_and_body(tls_server):
    import email.header
    p = tern_send("-s", server_arg(tls_server), "-f", "sender@example.org", "-t", "alice@example.test",
                  "--subject", "caf\u00e9 \u2013 " + "\u00fc" * 40 + " utf8-6d0", "--body", "na\u00efve body")
    assert p.returncode == 0, out(p)
    d = one_delivered(tls_server, "na\u00efve body".encode())
    raw_subject = d.header("Subject")
    assert raw_subject.isascii() and "=?UTF-8?B?" in raw_subject, raw_subject
    decoded = "".join(t.decode(c or "ascii") if isinstance(t, bytes) else t
                      for t, c in email.header.decode_header(raw_subject))
    assert decoded == "caf\u00e9 \u2013 " + "\u00fc" * 40 + " utf8-6d0"
    assert d.header("Content-Type") == "text/plain; charset=UTF-8"
    assert d.header("Content-Transfer-Encoding") == "8bit"
