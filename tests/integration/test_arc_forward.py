"""ARC sealing (RFC 8617) of the mail tern forwards: a message it judged on arrival, sent on by
an alias of a local domain to a remote address, leaves with a new ARC set (ARC-Seal,
ARC-Message-Signature, ARC-Authentication-Results carrying tern's verdict), made with the
dkim_sign key of the alias's domain. The copy the next hop (a sink at mx.remote.test,
127.0.0.16) receives is validated by dkimpy's arc_verify, an independent implementation.

Here tern is the forwarder lists.test (key tests/dns/dkim/arc.key, published at
arc._domainkey.lists.test); mail arrives signed by dkim.test (rsa._domainkey.dkim.test), and
for a chain that arrives already sealed, dkim.test's RSA key seals the first set."""
import email
import os
import re

import dkim
import pytest

from ternlib import HOSTNAME, data_payload, free_port_on, make_message

KEYS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dns", "dkim")
NEXT_HOP = "127.0.0.16"  # mx.remote.test in tests/dns/zone.conf.in


def key(name):
    with open(os.path.join(KEYS, name), "rb") as f:
        return f.read()


def record(name):
    return key(name).strip()


RECORDS = {b"arc._domainkey.lists.test.": record("arc.dns"),
           b"rsa._domainkey.dkim.test.": record("rsa.dns")}


def dnsfunc(name, timeout=5):
    if isinstance(name, str):
        name = name.encode()
    return RECORDS.get(name.rstrip(b".") + b".", b"")


def arc_verdict(raw):
    """dkimpy's validation of the chain: (cv, number of sets). dkimpy says None for a chain
    whose newest valid seal says cv=fail ("the chain is terminated"): a fail (RFC 8617 §5.2)."""
    cv, results, reason = dkim.arc_verify(raw, dnsfunc=dnsfunc)
    return (cv.decode() if cv else "fail:" + reason), len(results)


def fields(raw, name):
    return [" ".join(v.split()) for v in email.message_from_bytes(raw).get_all(name) or []]


def tag(value, name):
    m = re.search(r"(?:^|;)\s*%s=([^;]*)" % name, value)
    return m.group(1).replace(" ", "") if m else None


def dkim_signed(marker):
    body = ("%s\r\nSome text.\r\n" % marker).encode()
    msg = make_message(marker, frm="news@dkim.test", to="list@lists.test", body=body)
    sig = dkim.sign(msg, b"rsa", b"dkim.test", key("rsa.key"), canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"message-id"])
    return sig + msg


def sealed_before(marker):
    """A message dkim.test relayed after its own checks and sealed as i=1."""
    msg = b"Authentication-Results: dkim.test; spf=pass smtp.mailfrom=news@dkim.test\r\n" + \
        dkim_signed(marker)
    return b"".join(dkim.arc_sign(msg, b"rsa", b"dkim.test", key("rsa.key"), b"dkim.test")) + msg


@pytest.fixture
def forwarder(tern_factory, dns_server, sink_factory):
    """forwarder(sign=True, **settings) -> (tern for lists.test, the next hop's sink)."""
    def make(sign=True, **kw):
        port = free_port_on([NEXT_HOP])
        sink = sink_factory(NEXT_HOP, port)
        kw.setdefault("mail_auth_checks", "yes")
        kw.setdefault("dmarc_policy", "report")
        kw.setdefault("local_domains", "example.test, localhost, lists.test")
        lines = ["dkim_sign = lists.test arc %s" % os.path.join(KEYS, "arc.key")] if sign else []
        s = tern_factory(resolver=dns_server.address, relay_port=port, retry_min="1s",
                         retry_max="2s", extra_lines=lines,
                         aliases=["list@lists.test: bob@remote.test, alice"], **kw)
        return s, sink

    return make


def send(server, msg, rcpt="list@lists.test", sender="news@dkim.test"):
    with server.connect() as c:
        c.ehlo("client.test")
        assert c.cmd("MAIL FROM:<%s>" % sender).code == 250
        assert c.cmd("RCPT TO:<%s>" % rcpt).code == 250
        assert c.cmd("DATA").code == 354
        c.send(data_payload(msg))
        r = c.read_reply()
        c.cmd("QUIT")
    assert r.code == 250, r


def test_forwarded_mail_is_sealed_and_validates_in_dkimpy(forwarder):
    s, sink = forwarder()
    send(s, dkim_signed("arc-fwd-first"))
    raw = sink.wait_find(b"arc-fwd-first")[0].data
    seals = fields(raw, "ARC-Seal")
    assert len(seals) == 1, seals
    assert (tag(seals[0], "i"), tag(seals[0], "cv"), tag(seals[0], "d"), tag(seals[0], "s"),
            tag(seals[0], "a")) == ("1", "none", "lists.test", "arc", "rsa-sha256"), seals
    assert arc_verdict(raw) == ("pass", 1)
    # The AAR is tern's own verdict, as its Authentication-Results field gives it.
    aar = fields(raw, "ARC-Authentication-Results")
    ar = fields(raw, "Authentication-Results")
    assert len(aar) == 1 and len(ar) == 1, (aar, ar)
    assert aar[0] == "i=1; " + ar[0], (aar, ar)
    assert ar[0].startswith(HOSTNAME + ";") and "dkim=pass" in ar[0] and "dmarc=pass" in ar[0], ar
    # The seal is on top, the original DKIM signature still holds.
    assert raw.startswith(b"ARC-Seal:"), raw[:200]
    assert dkim.verify(raw, dnsfunc=dnsfunc)
    s.wait_log(r"ARC set added: d=lists\.test s=arc cv=none")
    # What the seal covers cannot change unnoticed.
    assert arc_verdict(raw.replace(b"Some text.", b"Some test."))[0].startswith("fail")
    assert arc_verdict(raw.replace(b"Subject: arc-fwd-first", b"Subject: other"))[0].startswith("fail")


def test_an_arriving_chain_is_continued(forwarder):
    s, sink = forwarder()
    send(s, sealed_before("arc-fwd-chain"))
    raw = sink.wait_find(b"arc-fwd-chain")[0].data
    seals = fields(raw, "ARC-Seal")
    assert [(tag(x, "i"), tag(x, "cv"), tag(x, "d")) for x in seals] == \
        [("2", "pass", "lists.test"), ("1", "none", "dkim.test")], seals
    assert arc_verdict(raw) == ("pass", 2)
    aar = [x for x in fields(raw, "ARC-Authentication-Results") if x.startswith("i=2;")]
    assert len(aar) == 1 and "arc=pass" in aar[0], aar
    s.wait_log(r"ARC set added: d=lists\.test s=arc cv=pass")


def test_a_broken_chain_is_sealed_as_failed(forwarder):
    """A chain that fails on arrival is sealed once with cv=fail (RFC 8617 §5.1.2), so the
    next hop knows it failed here; dkimpy must then fail it too."""
    s, sink = forwarder()
    sealed = sealed_before("arc-fwd-broken")
    tampered = sealed.replace(b"Some text.", b"Some test.")
    assert tampered != sealed
    send(s, tampered)
    raw = sink.wait_find(b"arc-fwd-broken")[0].data
    seals = fields(raw, "ARC-Seal")
    assert [(tag(x, "i"), tag(x, "cv")) for x in seals] == [("2", "fail"), ("1", "none")], seals
    # dkimpy validated tern's new AMS (the newest one is checked first) and read its seal's
    # cv=fail.
    assert arc_verdict(raw)[0] == "fail:ARC-Seal[2] reported failure, the chain is terminated"
    s.wait_log(r"ARC set added: d=lists\.test s=arc cv=fail")


def test_mail_that_is_not_forwarded_is_not_sealed(forwarder):
    s, sink = forwarder()
    send(s, dkim_signed("arc-fwd-local"), rcpt="alice@example.test")
    raw = s.wait_find("arc-fwd-local")[0][1]
    assert fields(raw, "ARC-Seal") == [] and fields(raw, "Authentication-Results"), raw[:400]


def test_no_key_for_the_alias_domain_forwards_unsealed(forwarder):
    s, sink = forwarder(sign=False)
    send(s, dkim_signed("arc-fwd-nokey"))
    raw = sink.wait_find(b"arc-fwd-nokey")[0].data
    assert fields(raw, "ARC-Seal") == []
    assert dkim.verify(raw, dnsfunc=dnsfunc)


def test_unjudged_mail_is_not_sealed(forwarder):
    """With the checks off there is no verdict to attest: nothing is sealed."""
    s, sink = forwarder(mail_auth_checks="no")
    send(s, dkim_signed("arc-fwd-unjudged"))
    raw = sink.wait_find(b"arc-fwd-unjudged")[0].data
    assert fields(raw, "ARC-Seal") == [] and fields(raw, "Authentication-Results") == []
