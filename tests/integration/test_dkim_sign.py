"""DKIM signing (RFC 6376, RFC 8463) of the mail tern sends on its users' behalf, checked with
dkimpy (Debian's python3-dkim, an independent verifier): what is signed (relay_networks, AUTH,
tern sendmail, tern's own bounces) and what is not (mail from elsewhere), RSA and Ed25519 at
once, a key added by a reload, a key that cannot be loaded, and `tern dkim keygen|check`.

The keys are tests/dns/dkim/{rsa.key, ed.pem}; their records are in the test DNS zone under
rsa._domainkey.dkim.test and ed._domainkey.dkim.test (tests/dns/zone.conf.in), and dkimpy is
given the same records from tests/dns/dkim/*.dns."""
import email
import os
import re
import signal
import subprocess

import dkim
import pytest

from test_sendmail import sendmail
from ternlib import HOSTNAME, TERN_BIN, data_payload, make_message, scaled

KEYS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dns", "dkim")
RSA_KEY = os.path.join(KEYS, "rsa.key")
ED_KEY = os.path.join(KEYS, "ed.pem")


def record(sel):
    with open(os.path.join(KEYS, sel + ".dns"), "rb") as f:
        return f.read().strip()


def dnsfunc_for(records):
    """dkimpy's DNS hook: {b"sel._domainkey.domain.": TXT value}."""
    def dnsfunc(name, timeout=5):
        if isinstance(name, str):
            name = name.encode()
        return records.get(name.rstrip(b".") + b".", b"")
    return dnsfunc


TEST_RECORDS = {b"rsa._domainkey.dkim.test.": record("rsa"), b"ed._domainkey.dkim.test.": record("ed")}


def signatures(raw):
    return email.message_from_bytes(raw).get_all("DKIM-Signature") or []


def verify_all(raw, records=TEST_RECORDS):
    """dkimpy's verdict on each signature, top down."""
    out = []
    for i in range(len(signatures(raw))):
        try:
            out.append(bool(dkim.DKIM(raw).verify(idx=i, dnsfunc=dnsfunc_for(records))))
        except dkim.DKIMException:
            out.append(False)
    return out


def tag(sig, name):
    m = re.search(r"(?:^|;)\s*%s=([^;]*)" % name, " ".join(sig.split()))
    return m.group(1).replace(" ", "") if m else None


SIGNING = ["dkim_sign = dkim.test rsa %s" % RSA_KEY, "dkim_sign = dkim.test ed %s" % ED_KEY]


def submit(server, marker, frm="news@dkim.test", sender=None, rcpt="alice@example.test", body=None):
    msg = make_message(marker, frm=frm, to=rcpt, body=body or ("%s\r\nText.\r\n" % marker))
    with server.connect() as c:
        c.ehlo("client.test")
        assert c.cmd("MAIL FROM:<%s>" % (sender or frm)).code == 250
        assert c.cmd("RCPT TO:<%s>" % rcpt).code == 250
        assert c.cmd("DATA").code == 354
        c.send(data_payload(msg))
        r = c.read_reply()
        c.cmd("QUIT")
    assert r.code == 250, r
    return msg


def stored(server, marker):
    return server.wait_find(marker)[0][1]


def test_relay_networks_mail_is_signed_with_every_key(tern_factory):
    s = tern_factory(relay_networks="127.0.0.0/8", extra_lines=SIGNING)
    submit(s, "dkim-sign-both")
    raw = stored(s, "dkim-sign-both")
    sigs = signatures(raw)
    assert [tag(x, "s") for x in sigs] == ["rsa", "ed"], sigs
    assert [tag(x, "a") for x in sigs] == ["rsa-sha256", "ed25519-sha256"], sigs
    assert all(tag(x, "d") == "dkim.test" and tag(x, "c") == "relaxed/relaxed" for x in sigs), sigs
    # From is over-signed: named once more than the message has it.
    assert all(tag(x, "h").lower().split(":").count("from") == 2 for x in sigs), sigs
    assert verify_all(raw) == [True, True]
    s.wait_log(r"DKIM-Signature added: d=dkim.test s=rsa")
    # The signatures cover the body and From: changed, dkimpy refuses them.
    assert verify_all(raw.replace(b"Text.", b"Test.")) == [False, False]
    assert verify_all(raw.replace(b"From: <news@dkim.test>", b"From: <boss@dkim.test>")) == [False, False]


def test_mail_from_elsewhere_is_not_signed(tern_factory):
    """Mail from a client that is neither in relay_networks nor authenticated is not ours to
    sign, even with a From of a signing domain (that would sign a forgery)."""
    s = tern_factory(extra_lines=SIGNING)
    submit(s, "dkim-sign-outsider")
    assert signatures(stored(s, "dkim-sign-outsider")) == []


def test_other_domains_are_not_signed(tern_factory):
    s = tern_factory(relay_networks="127.0.0.0/8", extra_lines=SIGNING)
    submit(s, "dkim-sign-other", frm="someone@example.org")
    assert signatures(stored(s, "dkim-sign-other")) == []


def test_authenticated_submission_is_signed(tls_factory):
    s = tls_factory(passwords={"news@dkim.test": "s3cret-pw"},
                    local_domains="example.test, localhost, dkim.test", extra_lines=SIGNING)
    with s.connect("submission") as c:
        c.ehlo("client.test")
        c.starttls()
        c.ehlo("client.test")
        assert c.auth_plain("news@dkim.test", "s3cret-pw").code == 235
        assert c.cmd("MAIL FROM:<news@dkim.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(data_payload(make_message("dkim-sign-auth", frm="news@dkim.test")))
        assert c.read_reply().code == 250
        c.cmd("QUIT")
    raw = stored(s, "dkim-sign-auth")
    assert verify_all(raw) == [True, True]


def test_sendmail_is_signed(tern_factory):
    s = tern_factory(extra_lines=SIGNING)
    msg = make_message("dkim-sign-sendmail", frm="news@dkim.test")
    p = sendmail(s, ["-i", "alice@example.test"], msg)
    assert p.returncode == 0, p.stderr
    raw = stored(s, "dkim-sign-sendmail")
    assert verify_all(raw) == [True, True]


def test_bounces_are_signed(tern_factory):
    """A bounce is From MAILER-DAEMON@<hostname>: signed when that domain has a key."""
    s = tern_factory(extra_lines=["dkim_sign = %s rsa %s" % (HOSTNAME, RSA_KEY)])
    msg = make_message("dkim-sign-bounce", frm="alice@example.test")
    p = sendmail(s, ["-i", "-f", "alice@example.test", "nobody-here@example.test"], msg)
    assert p.returncode == 0, p.stderr
    raw = s.wait_find("dkim-sign-bounce")[0][1]  # the bounce returns the message to alice
    assert b"MAILER-DAEMON@" + HOSTNAME.encode() in raw, raw[:600]
    sigs = signatures(raw)
    assert [tag(x, "d") for x in sigs] == [HOSTNAME], sigs
    assert verify_all(raw, {("rsa._domainkey.%s." % HOSTNAME).encode(): record("rsa")}) == [True]


def test_reload_adds_a_key(tern_factory):
    s = tern_factory(relay_networks="127.0.0.0/8")
    submit(s, "dkim-sign-before")
    assert signatures(stored(s, "dkim-sign-before")) == []
    with open(s.config_path, "a") as f:
        f.write(SIGNING[1] + "\n")
    os.kill(s.proc.pid, signal.SIGHUP)
    s.wait_log(r"reload: configuration, tables and certificates loaded")
    s.wait_log(r"reload: configuration, aliases and users read again")
    submit(s, "dkim-sign-after")
    raw = stored(s, "dkim-sign-after")
    assert [tag(x, "s") for x in signatures(raw)] == ["ed"]
    assert verify_all(raw) == [True]


def test_reload_with_a_bad_key_changes_nothing(tern_factory, tmp_path):
    s = tern_factory(relay_networks="127.0.0.0/8", extra_lines=SIGNING[:1])
    bad = tmp_path / "bad.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with open(s.config_path, "a") as f:
        f.write("dkim_sign = dkim.test other %s\n" % bad)
    os.kill(s.proc.pid, signal.SIGHUP)
    s.wait_log(r"reload: DKIM keys unreadable, nothing changed")
    submit(s, "dkim-sign-kept")
    raw = stored(s, "dkim-sign-kept")
    assert [tag(x, "s") for x in signatures(raw)] == ["rsa"]
    assert verify_all(raw) == [True]


def test_unreadable_key_stops_the_start(tern_factory, tmp_path):
    s = tern_factory(start=False, extra_lines=["dkim_sign = dkim.test rsa %s" % (tmp_path / "missing.key")])
    p = subprocess.run([TERN_BIN, "serve", "-c", s.config_path], capture_output=True,
                       timeout=scaled(30), cwd=s.base)
    assert p.returncode != 0
    assert b"cannot read the DKIM keys" in p.stderr and b"missing.key" in p.stderr, p.stderr


def run_tern(*args, **kw):
    return subprocess.run([TERN_BIN] + list(args), capture_output=True, timeout=scaled(60), **kw)


def test_keygen_writes_a_key_whose_record_verifies(tern_factory, tmp_path):
    """The key tern dkim keygen writes signs, and the record it prints verifies those
    signatures in dkimpy."""
    for sel, opts in (("k1", []), ("k2", ["--ed25519"]), ("k3", ["--rsa", "1024"])):
        key = tmp_path / (sel + ".key")
        p = run_tern("dkim", "keygen", "dkim.test", sel, "-o", str(key), *opts)
        assert p.returncode == 0, p.stderr
        assert (os.stat(key).st_mode & 0o777) == 0o600
        out = p.stdout.decode()
        m = re.search(r"^%s\._domainkey\.dkim\.test\. IN TXT \( (.*) \)$" % sel, out, re.M)
        assert m, out
        txt = "".join(re.findall(r'"([^"]*)"', m.group(1))).encode()
        assert ("dkim_sign = dkim.test %s %s" % (sel, key)) in out, out
        # Never over an existing key.
        again = run_tern("dkim", "keygen", "dkim.test", sel, "-o", str(key), *opts)
        assert again.returncode != 0 and b"File exists" in again.stderr
        s = tern_factory(relay_networks="127.0.0.0/8",
                         extra_lines=["dkim_sign = dkim.test %s %s" % (sel, key)])
        submit(s, "dkim-keygen-" + sel)
        raw = stored(s, "dkim-keygen-" + sel)
        assert verify_all(raw, {("%s._domainkey.dkim.test." % sel).encode(): txt}) == [True], out


def test_check_compares_the_published_record(tern_factory, dns_server, tmp_path):
    s = tern_factory(start=False, resolver=dns_server.address, extra_lines=SIGNING)
    ok = run_tern("dkim", "check", "dkim.test", "rsa", "-c", s.config_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert b"ok" in ok.stdout
    assert run_tern("dkim", "check", "dkim.test", "ed", "-c", s.config_path).returncode == 0
    # Another key under a published selector: 1, and the record to publish instead.
    other = tmp_path / "other.key"
    assert run_tern("dkim", "keygen", "dkim.test", "rsa", "-o", str(other)).returncode == 0
    s2 = tern_factory(start=False, resolver=dns_server.address,
                      extra_lines=["dkim_sign = dkim.test rsa %s" % other])
    p = run_tern("dkim", "check", "dkim.test", "rsa", "-c", s2.config_path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert b"another key" in p.stdout and b"rsa._domainkey.dkim.test. IN TXT" in p.stdout
    # A selector nobody published.
    s3 = tern_factory(start=False, resolver=dns_server.address,
                      extra_lines=["dkim_sign = dkim.test nosuch %s" % RSA_KEY])
    p = run_tern("dkim", "check", "dkim.test", "nosuch", "-c", s3.config_path)
    assert p.returncode == 1 and b"no key record" in p.stdout, p.stdout + p.stderr
    # No such dkim_sign line.
    p = run_tern("dkim", "check", "dkim.test", "zzz", "-c", s.config_path)
    assert p.returncode == 78, p.stdout + p.stderr
