"""TLS: STARTTLS (RFC 3207) on mx and submission, implicit TLS on smtps (RFC 8314), the
STARTTLS command-injection class (CVE-2011-0411), protocol and cipher floor, SNI, handshake
timeout, the Received header's TLS clause, certificates reloaded on SIGHUP."""
import os
import re
import shutil
import signal
import ssl
import subprocess
import time

import pytest

from ternlib import (HOSTNAME, PASSWORDS, TERN_BIN, Delivered, TernServer, b64, cert_der, client_context,
                     data_payload, ehlo_keywords, make_cert, make_message, scaled)


def tls_session(server, listener="mx", context=None, sni=HOSTNAME):
    """A client inside TLS (STARTTLS after EHLO, or implicit on smtps), EHLO not yet sent."""
    if server.roles[listener] == "smtps":
        return server.connect(listener, tls=context or client_context(), server_hostname=sni)
    c = server.connect(listener)
    c.ehlo()
    return c.starttls(context, sni)


def presented_cert(server, listener="smtps", sni=HOSTNAME):
    with tls_session(server, listener, sni=sni) as c:
        der = c.peer_cert_der()
        c.cmd("QUIT")
    return der


# --------------------------------------------------------------------------- STARTTLS


@pytest.mark.parametrize("listener", ["mx", "submission"])
def test_starttls_advertised_before_tls_only(tls_server, listener):
    with tls_server.connect(listener) as c:
        before = ehlo_keywords(c.ehlo())
        assert "STARTTLS" in before and before["STARTTLS"] == "", before
        assert "AUTH" not in before, before
        c.starttls()
        after = ehlo_keywords(c.ehlo())
        assert "STARTTLS" not in after, after
        if listener == "submission":
            assert set(after.get("AUTH", "").split()) >= {"PLAIN", "LOGIN"}, after
        else:
            assert "AUTH" not in after, after
        assert "PIPELINING" in after and "SIZE" in after, after  # the rest of the list stays


def test_starttls_reply_is_220_2_0_0(tls_server):
    with tls_server.connect() as c:
        c.ehlo()
        r = c.cmd("STARTTLS")
        assert r.code == 220 and r.enh == "2.0.0", r
        c.wrap()
        assert c.tls and c.sock.version() in ("TLSv1.2", "TLSv1.3")


def test_new_ehlo_required_after_starttls(tls_server):
    with tls_server.connect() as c:
        c.ehlo()
        c.starttls()
        c.expect("MAIL FROM:<sender@example.org>", 503, "5.5.1")
        c.ehlo()
        c.expect("MAIL FROM:<sender@example.org>", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")


def test_starttls_with_argument_501(tls_server):
    with tls_server.connect() as c:
        c.ehlo()
        c.expect("STARTTLS now", 501, "5.5.4")
        c.starttls()  # the refusal changed nothing
        c.ehlo()


def test_starttls_twice_503(tls_server):
    with tls_server.connect() as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        c.expect("STARTTLS", 503, "5.5.1")
        c.expect("MAIL FROM:<sender@example.org>", 250)  # the session is still usable


def test_starttls_before_ehlo_503(tls_server):
    with tls_server.connect() as c:
        c.expect("STARTTLS", 503, "5.5.1")
        assert not c.tls
        c.ehlo()
        c.starttls()


def test_starttls_on_smtps_refused(tls_server):
    with tls_server.connect("smtps") as c:
        kw = ehlo_keywords(c.ehlo())
        assert "STARTTLS" not in kw and {"PLAIN", "LOGIN"} <= set(kw.get("AUTH", "").split()), kw
        c.expect("STARTTLS", 503, "5.5.1")


def test_starttls_without_certificate_502(server):
    with server.connect() as c:
        assert "STARTTLS" not in ehlo_keywords(c.ehlo())
        c.expect("STARTTLS", 502, "5.5.1")
        c.expect("MAIL FROM:<sender@example.org>", 250)


# --------------------------------------------------------------------------- injection


INJECTIONS = {
    "rset": ("mx", b"RSET\r\n"),
    "mail": ("mx", b"MAIL FROM:<a@b.example>\r\n"),
    "transaction": ("mx", b"EHLO evil.test\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
                          b"DATA\r\nSubject: injected\r\n\r\ninjected\r\n.\r\n"),
    "auth": ("submission", b"AUTH PLAIN " + b64("\0alice\0" + PASSWORDS["alice"]).encode() + b"\r\n"),
}


@pytest.mark.parametrize("name", sorted(INJECTIONS))
def test_starttls_injection_discarded(tls_factory, name):
    """Commands sent in the same write as STARTTLS are never executed, before or after the
    handshake: no reply for them arrives, and their state is absent. (A plaintext reply
    after the 220 would break the handshake; one inside TLS would come before the EHLO's.)"""
    server = tls_factory()
    listener, injected = INJECTIONS[name]
    with server.connect(listener) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\n" + injected)
        r = c.read_reply()
        assert r.code == 220 and r.enh == "2.0.0", r
        assert c.buf == b"", "plaintext reply to injected commands: %r" % c.buf
        c.wait_server_read()
        c.wrap()
        r = c.cmd("EHLO client.test")
        assert r.code == 250 and r.lines[0].startswith(HOSTNAME), "first reply inside TLS is not the EHLO's: %s" % r
        if listener == "submission":
            c.expect("MAIL FROM:<alice@example.test>", 530, "5.7.0")  # not authenticated
        else:
            c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")  # no MAIL active
            c.expect("MAIL FROM:<sender@example.org>", 250, "2.1.0")
            c.expect("RSET", 250)
        c.cmd("QUIT")
    server.wait_queue_idle()
    assert server.all_messages() == []


# --------------------------------------------------------------------------- smtps


def test_smtps_greeting_after_handshake(tls_server):
    # The handshake is the first thing on the connection: plaintext bytes from the server
    # before it (a greeting) would make it fail.
    with tls_server.connect("smtps", read_greeting=False) as c:
        assert c.tls
        r = c.read_reply()
        assert r.code == 220 and r.lines[0].startswith(HOSTNAME), r
        c.ehlo()
        c.expect("QUIT", 221)


def test_smtps_plaintext_client_gets_no_smtp(tls_server):
    """A client speaking plain SMTP to the smtps port gets no SMTP reply: the bytes are not a
    ClientHello, so the connection is closed."""
    c = tls_server.connect("smtps", tls=None, read_greeting=False)
    with c:
        c.send(b"EHLO client.test\r\n")
        assert c.wait_closed(scaled(10))
        assert not re.search(rb"^[0-9]{3}[ -]", c.buf), c.buf
    with tls_server.connect("smtps") as c2:  # the listener still serves
        c2.ehlo()


# --------------------------------------------------------------------------- versions, ciphers


def handshake_error(server, listener, ctx):
    try:
        with tls_session(server, listener, ctx) as c:
            return None, c.sock.version()
    except (ssl.SSLError, OSError) as e:
        return e, None


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1")
@pytest.mark.parametrize("listener", ["mx", "smtps"])
def test_tls11_refused(tls_server, listener):
    # SECLEVEL=0 so that the client itself is willing to speak TLS 1.1: the refusal is the server's
    ctx = client_context(min_version=ssl.TLSVersion.TLSv1, max_version=ssl.TLSVersion.TLSv1_1, ciphers="@SECLEVEL=0:ALL")
    err, version = handshake_error(tls_server, listener, ctx)
    assert err is not None, "TLS 1.1 handshake succeeded (%s)" % version
    assert "NO_PROTOCOLS_AVAILABLE" not in str(err), "the client refused TLS 1.1 itself: %s" % err
    assert re.search(r"(?i)protocol.version|unsupported.protocol|wrong.version", str(err)), err
    with tls_session(tls_server, listener) as c:  # and the listener still serves
        c.ehlo()


@pytest.mark.parametrize("listener", ["mx", "submission", "smtps"])
def test_tls12_accepted(tls_server, listener):
    ctx = client_context(max_version=ssl.TLSVersion.TLSv1_2)
    with tls_session(tls_server, listener, ctx) as c:
        assert c.sock.version() == "TLSv1.2"
        assert c.sock.cipher()[0].startswith("ECDHE-ECDSA-"), c.sock.cipher()
        c.ehlo()


def test_tls13_is_preferred(tls_server):
    with tls_session(tls_server, "smtps") as c:
        assert c.sock.version() == "TLSv1.3"


def test_tls_min_version_13(tls_factory):
    server = tls_factory(tls_min_version="TLSv1.3")
    err, version = handshake_error(server, "smtps", client_context(max_version=ssl.TLSVersion.TLSv1_2))
    assert err is not None, "TLS 1.2 accepted with tls_min_version = TLSv1.3 (%s)" % version
    with tls_session(server, "mx") as c:
        assert c.sock.version() == "TLSv1.3"


@pytest.mark.parametrize("cipher", ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-NULL-SHA"])
def test_legacy_tls12_ciphers_refused(tls_server, cipher):
    ctx = client_context(max_version=ssl.TLSVersion.TLSv1_2, ciphers="@SECLEVEL=0:" + cipher)
    err, _ = handshake_error(tls_server, "smtps", ctx)
    assert err is not None, "cipher %s accepted" % cipher


def test_tls_ciphers_setting(tls_factory):
    server = tls_factory(tls_ciphers="ECDHE+CHACHA20")
    ctx = client_context(max_version=ssl.TLSVersion.TLSv1_2)
    with tls_session(server, "smtps", ctx) as c:
        assert c.sock.cipher()[0] == "ECDHE-ECDSA-CHACHA20-POLY1305", c.sock.cipher()
    err, _ = handshake_error(server, "smtps", client_context(max_version=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE+AESGCM"))
    assert err is not None


# --------------------------------------------------------------------------- certificates, SNI


@pytest.fixture(scope="module")
def sni_server(module_tls_factory, certs):
    return module_tls_factory(extra_lines=["tls_sni = other.test %s %s" % certs["other.test"],
                                    "tls_sni = *.wild.test %s %s" % certs["*.wild.test"]])


@pytest.mark.parametrize("sni, expect", [
    (None, "mx.test"),
    ("mx.test", "mx.test"),
    ("other.test", "other.test"),
    ("OTHER.Test", "other.test"),
    ("a.wild.test", "*.wild.test"),
    ("a.b.wild.test", "mx.test"),
    ("wild.test", "mx.test"),
    ("unknown.example", "mx.test"),
])
@pytest.mark.parametrize("listener", ["submission", "smtps"])
def test_sni_selects_certificate(sni_server, certs, listener, sni, expect):
    assert presented_cert(sni_server, listener, sni) == cert_der(certs[expect][0])


def test_listener_certificate_overrides_global(tls_factory, certs):
    server = tls_factory(listeners={"submission": "submission", "smtps": "smtps",
                                    "smtps-other": "smtps cert=%s key=%s" % certs["other.test"]})
    assert presented_cert(server, "smtps-other") == cert_der(certs["other.test"][0])
    assert presented_cert(server, "smtps") == cert_der(certs["mx.test"][0])


def make_chain(directory):
    """A CA and a leaf for mx.test signed by it; returns (fullchain, privkey, leaf)."""
    os.makedirs(directory, exist_ok=True)
    ca_cert, ca_key = make_cert(directory, "Test CA", name="ca")
    key = os.path.join(directory, "privkey.pem")
    csr = os.path.join(directory, "leaf.csr")
    leaf = os.path.join(directory, "cert.pem")
    ext = os.path.join(directory, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:mx.test\n")
    for cmd in (["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", "/CN=mx.test"],
                ["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                 "-out", leaf, "-days", "365", "-extfile", ext]):
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
    full = os.path.join(directory, "fullchain.pem")
    with open(full, "w") as out:
        for part in (leaf, ca_cert):
            with open(part) as f:
                out.write(f.read())
    return full, key, leaf


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_certbot_fullchain_layout(tls_factory, tmp_path):
    full, key, leaf = make_chain(str(tmp_path / "live"))
    server = tls_factory(tls_cert=full, tls_key=key)
    assert presented_cert(server, "smtps") == cert_der(leaf)
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % server.ports["smtps"], "-servername",
                        HOSTNAME, "-showcerts"], stdin=subprocess.DEVNULL, capture_output=True, timeout=scaled(30))
    out = p.stdout.decode("utf-8", "replace")
    assert out.count("-----BEGIN CERTIFICATE-----") == 2, "the chain is not sent whole:\n" + out


# --------------------------------------------------------------------------- timeouts, failures


@pytest.mark.parametrize("where", ["smtps", "after-starttls"])
def test_handshake_timeout(tls_factory, where):
    server = tls_factory(timeout_tls="2s")
    if where == "smtps":
        c = server.connect("smtps", tls=None, read_greeting=False)
    else:
        c = server.connect("mx")
        c.ehlo()
        r = c.cmd("STARTTLS")
        assert r.code == 220, r
    with c:
        t0 = time.monotonic()
        assert c.wait_closed(scaled(2) + 6), "connection still open %.1fs after the handshake should have timed out" % (time.monotonic() - t0)
        elapsed = time.monotonic() - t0
    assert elapsed >= 1.5, "closed after %.2fs, before the 2s handshake timeout" % elapsed
    with server.connect("smtps") as c:  # the server is fine
        c.ehlo()


def test_handshake_failure_closed_and_logged(tls_factory):
    server = tls_factory()
    c = server.connect("smtps", tls=None, read_greeting=False)
    with c:
        c.send(b"\x16\x03\x01\x00\x05garbage-that-is-not-a-client-hello\r\n" * 4)
        assert c.wait_closed(scaled(10))

    def tls_lines():
        return [l for l in server.log().splitlines()
                if re.search(r"(?i)tls|ssl|handshake", l) and not re.search(r"listening on|(dis)?connect from", l)]
    deadline = time.monotonic() + scaled(5)
    while time.monotonic() < deadline and not tls_lines():
        time.sleep(0.05)
    assert tls_lines(), server.log_tail()
    with server.connect("smtps") as c2:
        c2.ehlo()


# --------------------------------------------------------------------------- Received


@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2"])
def test_received_header_names_tls(tls_factory, version):
    server = tls_factory()
    ctx = client_context(max_version=ssl.TLSVersion.TLSv1_2) if version == "TLSv1.2" else client_context()
    subject = "received-" + version
    with tls_session(server, "mx", ctx) as c:
        assert c.sock.version() == version
        cipher = c.sock.cipher()[0]
        c.ehlo()
        r = c.mail("sender@example.org", ["alice@example.test"], make_message(subject))
        assert r.code == 250, r
        c.cmd("QUIT")
    (raw,) = server.wait_delivered("alice", 1)
    d = Delivered(raw)
    assert d.header("Subject") == subject
    assert re.search(r"\bwith ESMTPS\b", d.received), d.received
    assert re.search(r"\(using %s with cipher %s\b" % (re.escape(version), re.escape(cipher)), d.received), d.received


def test_received_header_plain_session_is_esmtp(tls_server):
    r, _ = tls_server.send_one(make_message("received-plain"))
    assert r.code == 250, r
    (_, raw), = tls_server.wait_find("received-plain")
    received = Delivered(raw).received
    assert re.search(r"\bwith ESMTP\b", received) and "ESMTPS" not in received and "using TLS" not in received, received


# --------------------------------------------------------------------------- reload


def install(src_pair, dst_pair):
    """Replaces the certificate and key files atomically (as certbot's renewal does)."""
    for src, dst in zip(src_pair, dst_pair):
        tmp = dst + ".new"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)


def test_sighup_reloads_certificates(tls_factory, certs, tmp_path):
    live = (str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    install(certs["mx.test"], live)
    server = tls_factory(tls_cert=live[0], tls_key=live[1])
    old, new = cert_der(certs["mx.test"][0]), cert_der(certs["mx.test-2"][0])
    assert presented_cert(server, "smtps") == old

    # A session in the middle of a transaction across the reload.
    a = tls_session(server, "mx")
    a.ehlo()
    a.expect("MAIL FROM:<sender@example.org>", 250)
    a.expect("RCPT TO:<alice@example.test>", 250)
    assert a.peer_cert_der() == old

    install(certs["mx.test-2"], live)
    os.kill(server.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + scaled(10)
    seen = old
    while seen != new and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = presented_cert(server, "smtps")
    assert seen == new, "smtps still presents the old certificate after SIGHUP"
    assert presented_cert(server, "submission") == new
    assert presented_cert(server, "mx") == new

    with a:
        a.expect("DATA", 354)
        a.send(data_payload(make_message("across-reload")))
        r = a.read_reply()
        assert r.code == 250, r
        a.expect("QUIT", 221)
    server.wait_find("across-reload")
    assert server.alive()


def test_sighup_with_broken_certificate_keeps_serving(tls_factory, certs, tmp_path):
    """A renewal that leaves a broken key must not take the server down: it keeps a working
    certificate (the old one) and keeps serving TLS."""
    live = (str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    install(certs["mx.test"], live)
    server = tls_factory(tls_cert=live[0], tls_key=live[1])
    with open(live[1], "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
    os.kill(server.proc.pid, signal.SIGHUP)
    server.wait_log(r"reload: (certificates unreadable|configuration errors), nothing changed")
    assert server.alive(), server.log_tail()
    assert presented_cert(server, "smtps") == cert_der(certs["mx.test"][0])


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("role", ["submission", "smtps"])
def test_check_config_requires_certificate(tmp_path, role):
    conf = TernServer(tmp_path / "cfg", listeners={role: role})
    p = subprocess.run([TERN_BIN, "check-config", "-c", conf.config_path], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=scaled(30))
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert p.returncode != 0, out
    assert re.search(r"(?i)cert", out), out


def test_check_config_accepts_tls_settings(tmp_path, certs):
    conf = TernServer(tmp_path / "cfg", {"tls_cert": certs["mx.test"][0], "tls_key": certs["mx.test"][1],
                                         "tls_min_version": "TLSv1.3", "timeout_tls": "30s"},
                      listeners={"submission": "submission", "smtps": "smtps"},
                      extra_lines=["tls_sni = other.test %s %s" % certs["other.test"]])
    p = subprocess.run([TERN_BIN, "check-config", "-c", conf.config_path], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=scaled(30))
    assert p.returncode == 0, (p.stdout + p.stderr).decode("utf-8", "replace")
