"""Real mail clients over TLS with AUTH, end to end into the Maildir: swaks, curl, msmtp and
Python's smtplib, on submission (STARTTLS), smtps (implicit TLS) and mx (STARTTLS, no AUTH)."""
import os
import re
import shutil
import smtplib
import subprocess

import pytest

from ternlib import PASSWORDS, Delivered, client_context, crlf_to_lf, make_message, scaled

ALICE_PW = PASSWORDS["alice"]
# With a Date: (make_message gives a Message-ID:) submission adds nothing: compared byte for byte.
DATED = ("Date: Mon, 1 Jan 2024 10:00:00 +0000",)


def run(cmd, stdin=None):
    p = subprocess.run(cmd, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                       capture_output=True, timeout=scaled(60))
    return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")


def delivered(server, user, subject, protocol):
    """The one message in `user`'s Maildir: its subject and the Received protocol checked."""
    (raw,) = server.wait_delivered(user, 1)
    d = Delivered(raw)
    assert d.header("Subject") == subject, d.raw
    assert re.search(r"\bwith %s\b" % protocol, d.received), d.received
    if protocol.startswith("ESMTPS"):
        assert re.search(r"\(using TLSv1\.[23] with cipher [A-Z0-9_-]+\b", d.received), d.received
    return d


def nothing_delivered(server):
    server.wait_queue_idle()
    assert server.all_messages() == []


# --------------------------------------------------------------------------- swaks


needs_swaks = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")


def swaks(server, listener, *args):
    return run(["swaks", "--server", "127.0.0.1:%d" % server.ports[listener], "--helo", "swaks.client.test",
                "--timeout", str(int(scaled(20)))] + list(args))


@needs_swaks
@pytest.mark.parametrize("listener, tls_flag", [("submission", "--tls"), ("smtps", "--tlsc")])
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_auth(tls_factory, listener, tls_flag, mech):
    server = tls_factory()
    subject = "swaks-%s-%s" % (listener, mech)
    rc, out = swaks(server, listener, tls_flag, "--auth", mech, "--auth-user", "alice", "--auth-password", ALICE_PW,
                    "--from", "alice@example.test", "--to", "carol@example.test", "--header", "Subject: " + subject,
                    "--body", "hello over TLS")
    assert rc == 0, out
    assert "235 2.7.0" in out and "250 2.0.0" in out, out
    d = delivered(server, "carol", subject, "ESMTPSA")
    assert b"hello over TLS" in d.content
    assert d.return_path == b"<alice@example.test>"


@needs_swaks
def test_swaks_starttls_on_mx(tls_factory):
    server = tls_factory()
    rc, out = swaks(server, "mx", "--tls", "--from", "sender@example.org", "--to", "alice@example.test",
                    "--header", "Subject: swaks-mx-tls")
    assert rc == 0, out
    delivered(server, "alice", "swaks-mx-tls", "ESMTPS")


@needs_swaks
def test_swaks_auth_without_tls_fails(tls_factory):
    server = tls_factory()
    rc, out = swaks(server, "submission", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", ALICE_PW,
                    "--from", "alice@example.test", "--to", "carol@example.test")
    assert rc != 0, out
    assert ALICE_PW not in server.log()
    nothing_delivered(server)


@needs_swaks
def test_swaks_wrong_password(tls_factory):
    server = tls_factory()
    rc, out = swaks(server, "submission", "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "nope",
                    "--from", "alice@example.test", "--to", "carol@example.test")
    assert rc != 0 and "535 5.7.8" in out, out
    nothing_delivered(server)


# --------------------------------------------------------------------------- curl


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")


def curl(server, url, *args):
    return run(["curl", "-sS", "--max-time", str(int(scaled(30))), "-k", url] + list(args))


@needs_curl
@pytest.mark.parametrize("listener, scheme, extra", [("submission", "smtp", ["--ssl-reqd"]), ("smtps", "smtps", [])])
def test_curl_auth(tls_factory, tmp_path, listener, scheme, extra):
    server = tls_factory()
    subject = "curl-" + listener
    f = tmp_path / "m.txt"
    f.write_bytes(b"Subject: %s\r\nFrom: <alice@example.test>\r\n\r\nHello from curl.\r\n.dot line\r\n" % subject.encode())
    rc, out = curl(server, "%s://127.0.0.1:%d" % (scheme, server.ports[listener]), *extra,
                   "--user", "alice:" + ALICE_PW, "--mail-from", "alice@example.test",
                   "--mail-rcpt", "carol@example.test", "--upload-file", str(f))
    assert rc == 0, out
    d = delivered(server, "carol", subject, "ESMTPSA")
    assert d.content.endswith(b"\n\nHello from curl.\n.dot line\n"), d.content


@needs_curl
def test_curl_wrong_password(tls_factory, tmp_path):
    server = tls_factory()
    f = tmp_path / "m.txt"
    f.write_bytes(b"Subject: curl-wrong\r\n\r\nx\r\n")
    rc, out = curl(server, "smtps://127.0.0.1:%d" % server.ports["smtps"], "--user", "alice:wrong",
                   "--mail-from", "alice@example.test", "--mail-rcpt", "carol@example.test", "--upload-file", str(f))
    assert rc == 67, (rc, out)  # CURLE_LOGIN_DENIED
    nothing_delivered(server)


@needs_curl
def test_curl_ssl_reqd_without_certificate_fails(server, tmp_path):
    """No certificate on mx: STARTTLS is not offered, so --ssl-reqd must not fall back."""
    f = tmp_path / "m.txt"
    f.write_bytes(b"Subject: curl-no-tls\r\n\r\nx\r\n")
    rc, out = curl(server, "smtp://127.0.0.1:%d" % server.port, "--ssl-reqd", "--mail-from", "sender@example.org",
                   "--mail-rcpt", "alice@example.test", "--upload-file", str(f))
    assert rc != 0, out
    nothing_delivered(server)


# --------------------------------------------------------------------------- msmtp


needs_msmtp = pytest.mark.skipif(shutil.which("msmtp") is None, reason="msmtp not installed")


def msmtp(server, tmp_path, account, rcpt, content, auth="on", password=ALICE_PW):
    conf = tmp_path / "msmtprc"
    conf.write_text(
        "defaults\n"
        "tls on\n"
        "tls_certcheck off\n"
        "timeout %d\n"
        "domain msmtp.client.test\n"
        "\n"
        "account submission\n"
        "host 127.0.0.1\n"
        "port %d\n"
        "tls_starttls on\n"
        "auth %s\n"
        "user alice\n"
        "password %s\n"
        "from alice@example.test\n"
        "\n"
        "account smtps\n"
        "host 127.0.0.1\n"
        "port %d\n"
        "tls_starttls off\n"
        "auth %s\n"
        "user alice\n"
        "password %s\n"
        "from alice@example.test\n" % (int(scaled(20)), server.ports["submission"], auth, password,
                                        server.ports["smtps"], auth, password))
    os.chmod(conf, 0o600)  # msmtp refuses a password in a file others can read
    return run(["msmtp", "-C", str(conf), "-a", account, rcpt], stdin=content)


@needs_msmtp
@pytest.mark.parametrize("account", ["submission", "smtps"])
@pytest.mark.parametrize("auth", ["on", "plain", "login"])
def test_msmtp(tls_factory, tmp_path, account, auth):
    server = tls_factory()
    subject = "msmtp-%s-%s" % (account, auth)
    content = make_message(subject, "Hello from msmtp.\r\n", frm="alice@example.test", to="carol@example.test",
                           extra_headers=DATED)
    rc, out = msmtp(server, tmp_path, account, "carol@example.test", content, auth)
    assert rc == 0, out
    d = delivered(server, "carol", subject, "ESMTPSA")
    assert d.content == crlf_to_lf(content)


@needs_msmtp
def test_msmtp_wrong_password(tls_factory, tmp_path):
    server = tls_factory()
    rc, out = msmtp(server, tmp_path, "submission", "carol@example.test", make_message("msmtp-wrong"), password="nope")
    assert rc != 0, out
    nothing_delivered(server)


# --------------------------------------------------------------------------- smtplib


def smtplib_client(server, listener):
    ctx = client_context()
    if server.roles[listener] == "smtps":
        return smtplib.SMTP_SSL("127.0.0.1", server.ports[listener], local_hostname="client.test",
                                timeout=scaled(20), context=ctx)
    s = smtplib.SMTP("127.0.0.1", server.ports[listener], local_hostname="client.test", timeout=scaled(20))
    s.ehlo()
    assert s.has_extn("starttls") and not s.has_extn("auth")
    code, _ = s.starttls(context=ctx)
    assert code == 220
    return s


@pytest.mark.parametrize("listener", ["submission", "smtps"])
def test_smtplib_login(tls_factory, listener):
    server = tls_factory()
    msg = make_message("smtplib-" + listener, frm="alice@example.test", to="carol@example.test", extra_headers=DATED)
    with smtplib_client(server, listener) as s:
        s.ehlo()
        assert set(s.esmtp_features["auth"].upper().split()) >= {"PLAIN", "LOGIN"}
        code, _ = s.login("alice", ALICE_PW)
        assert code == 235
        assert s.sendmail("alice@example.test", ["carol@example.test", "someone@example.org"], msg) == {}
    d = delivered(server, "carol", "smtplib-" + listener, "ESMTPSA")
    assert d.content == crlf_to_lf(msg)


def test_smtplib_auth_login_mechanism(tls_factory):
    server = tls_factory()
    with smtplib_client(server, "submission") as s:
        s.ehlo()
        s.user, s.password = "alice", ALICE_PW
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235
        assert s.sendmail("alice@example.test", ["carol@example.test"], make_message("smtplib-login")) == {}
    delivered(server, "carol", "smtplib-login", "ESMTPSA")


def test_smtplib_refusals(tls_factory):
    server = tls_factory()
    with smtplib_client(server, "smtps") as s:
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login("alice", "wrong")
        assert e.value.smtp_code == 535
    with smtplib_client(server, "submission") as s:
        s.login("alice", ALICE_PW)
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("carol@example.test", ["alice@example.test"], make_message("smtplib-foreign"))
        assert e.value.smtp_code == 553
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], local_hostname="client.test", timeout=scaled(20)) as s:
        with pytest.raises(smtplib.SMTPNotSupportedError):
            s.login("alice", ALICE_PW)  # AUTH is not offered before TLS
    nothing_delivered(server)


def test_smtplib_starttls_on_mx(tls_factory):
    server = tls_factory()
    msg = make_message("smtplib-mx-tls")
    with smtplib_client(server, "mx") as s:
        s.ehlo()
        assert not s.has_extn("auth") and not s.has_extn("starttls")
        assert s.sendmail("sender@example.org", ["alice@example.test"], msg) == {}
    d = delivered(server, "alice", "smtplib-mx-tls", "ESMTPS")
    assert d.content == crlf_to_lf(msg)
