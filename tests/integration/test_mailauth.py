"""Mail authentication of inbound mail: SPF at MAIL (RFC 7208), DMARC at the end of DATA (RFC
7489) and the Authentication-Results field (RFC 8601) tern writes, with the SPF and DMARC
records of the test DNS server (tests/dns/zone.conf.in). Delivered fields are read with Python's
email package and python3-authres (an independent RFC 8601 parser)."""
import email
import email.policy
import os

import authres
import dkim
import pytest

from ternlib import HOSTNAME, data_payload, make_message


@pytest.fixture
def judged(tern_factory, dns_server):
    def make(**kw):
        kw.setdefault("mail_auth_checks", "yes")
        kw.setdefault("resolver", dns_server.address)
        return tern_factory(**kw)

    return make


def send(server, sender, frm, marker, helo="client.test", extra_headers=(), rcpt="alice@example.test",
         msg=None):
    """One message (msg, or one made with the marker as its subject); returns (reply to the end
    of DATA, replies to MAIL and RCPT)."""
    with server.connect() as c:
        c.ehlo(helo)
        rm = c.cmd("MAIL FROM:<%s>" % sender)
        rr = c.cmd("RCPT TO:<%s>" % rcpt)
        if rr.code != 250:
            c.cmd("QUIT")
            return None, rm, rr
        assert c.cmd("DATA").code == 354
        if msg is None:
            msg = make_message(marker, frm=frm, to=rcpt, extra_headers=extra_headers)
        c.send(data_payload(msg))
        r = c.read_reply()
        c.cmd("QUIT")
        return r, rm, rr


def the_message(server, marker):
    raw = server.wait_find(marker)[0][1]
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def results_of(msg):
    """The Authentication-Results fields, each parsed by python3-authres."""
    fields = msg.get_all("Authentication-Results") or []
    return [authres.AuthenticationResultsHeader.parse("Authentication-Results: " + " ".join(f.split()))
            for f in fields]


def result(ar, method, ptype=None, prop=None):
    for r in ar.results:
        if r.method == method:
            if ptype is None:
                return r
            for p in r.properties:
                if p.type == ptype and p.name == prop:
                    return r
    return None


def test_spf_and_dmarc_pass_recorded(judged):
    s = judged()
    r, _, _ = send(s, "bob@spfpass.test", "bob@spfpass.test", "auth-pass")
    assert r.code == 250, r
    msg = the_message(s, "auth-pass")
    ars = results_of(msg)
    assert len(ars) == 1, msg.get_all("Authentication-Results")
    ar = ars[0]
    assert ar.authserv_id == HOSTNAME
    spf = result(ar, "spf", "smtp", "mailfrom")
    assert spf is not None and spf.result == "pass", ar
    assert [p.value for p in spf.properties if p.name == "mailfrom"] == ["bob@spfpass.test"]
    dmarc = result(ar, "dmarc")
    assert dmarc is not None and dmarc.result == "pass", ar
    assert [p.value for p in dmarc.properties if p.name == "from"] == ["spfpass.test"]
    # Above everything else: the first field of the stored message.
    raw = s.wait_find("auth-pass")[0][1]
    assert b"Authentication-Results:" in raw.split(b"Received:", 1)[0], raw[:400]
    s.wait_log(r"authentication: spf=pass smtp.mailfrom=<bob@spfpass.test>")


def test_arriving_results_claiming_our_id_are_removed(judged):
    """RFC 8601 §5: a forged Authentication-Results with our authserv-id (in any case, quoted,
    with a comment or a version) never reaches the mailbox; one of another host's stays."""
    s = judged()
    forged = [
        "Authentication-Results: %s; dmarc=pass header.from=bank.test" % HOSTNAME,
        "Authentication-Results: (comment) %s 1; spf=pass" % HOSTNAME.upper(),
        "Authentication-Results: \"%s\"; dkim=pass" % HOSTNAME,
        "authentication-results: %s.;\r\n\tdkim=pass header.d=bank.test" % HOSTNAME,
        "Authentication-Results: other.example; spf=pass smtp.mailfrom=x@other.example",
    ]
    r, _, _ = send(s, "bob@spfpass.test", "bob@spfpass.test", "auth-forged", extra_headers=forged)
    assert r.code == 250, r
    msg = the_message(s, "auth-forged")
    fields = msg.get_all("Authentication-Results") or []
    ids = sorted(authres.AuthenticationResultsHeader.parse(
        "Authentication-Results: " + " ".join(f.split())).authserv_id.lower() for f in fields)
    assert ids == sorted([HOSTNAME, "other.example"]), fields
    # Ours is tern's own verdict, not the forged one.
    ours = [f for f in fields if f.split(";")[0].strip() == HOSTNAME][0]
    assert "bank.test" not in ours, ours


def test_dmarc_reject_refused_at_end_of_data(judged):
    s = judged()
    r, rm, rr = send(s, "mallory@spffail.test", "ceo@spffail.test", "auth-reject")
    assert rm.code == 250 and rr.code == 250  # SPF alone only records (the default)
    assert r.code == 550 and r.enh == "5.7.1", r
    assert "DMARC" in r.text and "spffail.test" in r.text, r
    s.wait_log(r"reject: END-OF-MESSAGE .* 550 5.7.1")
    s.settle()
    assert s.find("auth-reject") == []


def test_dmarc_report_mode_delivers_with_the_verdict(judged):
    s = judged(dmarc_policy="report")
    r, _, _ = send(s, "mallory@spffail.test", "ceo@spffail.test", "auth-report")
    assert r.code == 250, r
    ar = results_of(the_message(s, "auth-report"))[0]
    assert result(ar, "spf").result == "fail"
    dmarc = result(ar, "dmarc")
    assert dmarc.result == "fail", ar
    assert [p.value for p in dmarc.properties if p.name == "dmarc"] == ["reject"], ar


def test_dmarc_quarantine_goes_to_junk(judged):
    s = judged()
    r, _, _ = send(s, "x@quarantine.test", "x@quarantine.test", "auth-junk")
    assert r.code == 250, r
    junk = os.path.join(s.maildir_path("alice"), ".Junk", "new")
    s.wait_log(r"status=sent")
    files = os.listdir(junk)
    assert len(files) == 1, files
    with open(os.path.join(junk, files[0]), "rb") as f:
        assert b"auth-junk" in f.read()
    inbox = os.path.join(s.maildir_path("alice"), "new")
    assert not os.path.isdir(inbox) or os.listdir(inbox) == []


def test_no_dmarc_record_is_none(judged):
    s = judged()
    r, _, _ = send(s, "x@nodmarc.test", "x@nodmarc.test", "auth-none")
    assert r.code == 250, r
    ar = results_of(the_message(s, "auth-none"))[0]
    assert result(ar, "spf").result == "fail"
    assert result(ar, "dmarc").result == "none"


def test_spf_fail_refused_at_rcpt_when_asked(judged):
    s = judged(spf_reject_fail="yes")
    r, rm, rr = send(s, "mallory@spffail.test", "mallory@spffail.test", "auth-spf-reject")
    assert rm.code == 250
    assert rr.code == 550 and rr.enh == "5.7.23", rr
    # The domain's own explanation (exp=, RFC 7208 §6.2), expanded.
    assert "127.0.0.1 may not send for spffail.test" in rr.text, rr


def test_spf_temperror_deferred_when_asked(judged):
    s = judged(spf_defer_temperror="yes")
    r, rm, rr = send(s, "x@servfail.test", "x@servfail.test", "auth-temperror")
    assert rr.code == 451 and rr.enh == "4.7.24", rr


def test_helo_identity_checked_too(judged):
    s = judged()
    r, _, _ = send(s, "bob@spfpass.test", "bob@spfpass.test", "auth-helo", helo="helo.spfpass.test")
    assert r.code == 250, r
    ar = results_of(the_message(s, "auth-helo"))[0]
    helo = result(ar, "spf", "smtp", "helo")
    assert helo is not None and helo.result == "pass", ar


def test_null_sender_uses_the_helo_identity(judged):
    s = judged()
    r, _, _ = send(s, "", "MAILER-DAEMON@spfpass.test", "auth-null", helo="helo.spfpass.test")
    assert r.code == 250, r
    ar = results_of(the_message(s, "auth-null"))[0]
    spf = result(ar, "spf")
    assert spf.result == "pass", ar


def test_relay_networks_clients_are_not_judged(judged):
    s = judged(relay_networks="127.0.0.0/8")
    r, _, _ = send(s, "mallory@spffail.test", "ceo@spffail.test", "auth-trusted")
    assert r.code == 250, r
    assert the_message(s, "auth-trusted").get_all("Authentication-Results") is None


# DKIM (RFC 6376): messages signed by dkimpy (an independent implementation) with the keys whose
# records the test DNS server publishes at <sel>._domainkey.dkim.test. dkim.test's SPF fails for
# every client and its DMARC policy is p=reject, so only an aligned DKIM pass lets mail through.
KEYS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dns", "dkim")


def dkim_signed(marker, sel="rsa", domain="dkim.test", frm="news@dkim.test", body=None):
    with open(os.path.join(KEYS, sel + ".key"), "rb") as f:
        key = f.read()
    body = body or ("%s\r\nSome text.\r\n" % marker).encode()
    msg = make_message(marker, frm=frm, body=body)
    alg = b"ed25519-sha256" if sel == "ed" else b"rsa-sha256"
    sig = dkim.sign(msg, sel.encode(), domain.encode(), key, signature_algorithm=alg,
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"message-id"])
    return sig.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + msg


@pytest.mark.parametrize("sel", ["rsa", "ed"])
def test_dkim_pass_carries_dmarc(judged, sel):
    """SPF fails, the dkimpy signature passes and is aligned with From: DMARC passes."""
    s = judged()
    marker = "auth-dkim-" + sel
    r, _, _ = send(s, "news@dkim.test", "news@dkim.test", marker, msg=dkim_signed(marker, sel))
    assert r.code == 250, r
    msg = the_message(s, marker)
    ar = results_of(msg)[0]
    assert result(ar, "spf").result == "fail", ar
    d = result(ar, "dkim")
    assert d is not None and d.result == "pass", ar
    props = {p.name: p.value for p in d.properties}
    assert props["d"] == "dkim.test" and props["s"] == sel, props
    assert props["a"] == ("ed25519-sha256" if sel == "ed" else "rsa-sha256"), props
    assert msg["DKIM-Signature"].replace("\r\n", "").replace(" ", "").find(
        "b=" + props["b"]) >= 0, props
    assert result(ar, "dmarc").result == "pass", ar
    s.wait_log(r"authentication: .* dkim=pass:dkim.test arc=none dmarc=pass")


def test_dkim_body_changed_fails_and_dmarc_rejects(judged):
    s = judged()
    signed = dkim_signed("auth-dkim-tampered")
    tampered = signed.replace(b"Some text.", b"Some test.")
    assert tampered != signed
    r, _, _ = send(s, "news@dkim.test", "news@dkim.test", "auth-dkim-tampered", msg=tampered)
    assert r.code == 550 and r.enh == "5.7.1", r
    s.wait_log(r"authentication: .* dkim=fail:dkim.test arc=none dmarc=fail")


def test_dkim_report_mode_records_the_failure(judged):
    s = judged(dmarc_policy="report")
    signed = dkim_signed("auth-dkim-fail-recorded")
    tampered = signed.replace(b"Some text.", b"Some test.")
    r, _, _ = send(s, "news@dkim.test", "news@dkim.test", "auth-dkim-fail-recorded", msg=tampered)
    assert r.code == 250, r
    msg = the_message(s, "auth-dkim-fail-recorded")
    ar = results_of(msg)[0]
    assert result(ar, "dkim").result == "fail", ar
    assert "(body hash mismatch)" in " ".join(msg["Authentication-Results"].split()), msg

    assert result(ar, "dmarc").result == "fail", ar


def test_dkim_key_missing_is_permerror(judged):
    s = judged(dmarc_policy="report")
    r, _, _ = send(s, "news@dkim.test", "news@dkim.test", "auth-dkim-nokey",
                   msg=dkim_signed("auth-dkim-nokey", sel="rsa", domain="nokey.dkim.test",
                                   frm="news@nokey.dkim.test"))
    assert r.code == 250, r
    ar = results_of(the_message(s, "auth-dkim-nokey"))[0]
    assert result(ar, "dkim").result == "permerror", ar


def test_dkim_from_added_above_signed_is_not_a_pass(judged):
    """RFC 6376 §8.15: a From added above the signed one is not covered by the signature; the
    message must not pass DKIM (nor DMARC) on the strength of it."""
    s = judged()
    signed = dkim_signed("auth-dkim-addfrom")
    forged = b"From: <ceo@dkim.test>\r\n" + signed
    r, _, _ = send(s, "news@dkim.test", "news@dkim.test", "auth-dkim-addfrom", msg=forged)
    assert r.code == 550 and r.enh == "5.7.1", r
    s.wait_log(r"authentication: .* dkim=policy:dkim.test arc=none dmarc=")


def test_dkim_signature_over_a_message_with_bdat(judged):
    """The same verification when the content comes in BDAT chunks split inside the header."""
    s = judged()
    msg = dkim_signed("auth-dkim-bdat", sel="ed")
    with s.connect() as c:
        c.ehlo("client.test")
        assert c.cmd("MAIL FROM:<news@dkim.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        cut = msg.index(b"Subject:") + 3
        c.send(b"BDAT %d\r\n" % cut + msg[:cut])
        assert c.read_reply().code == 250
        c.send(b"BDAT %d LAST\r\n" % (len(msg) - cut) + msg[cut:])
        r = c.read_reply()
        assert r.code == 250, r
        c.cmd("QUIT")
    ar = results_of(the_message(s, "auth-dkim-bdat"))[0]
    assert result(ar, "dkim").result == "pass", ar
    assert result(ar, "dmarc").result == "pass", ar


def test_dkim_keys_in_before_the_end_of_the_content(judged):
    """The keys' answers come while the body is still on its way (a message over 64 KB, a slow
    client): the verdict at the end of DATA still judges every signature (it used to read the
    results before the verifier had drawn them, and the smtp process died on them)."""
    s = judged(debug="yes")
    # The session hands the content on in blocks of 64 KB: the first holds the header section.
    body = b"auth-dkim-early\r\n" + b"a line of the body, one of many of the same\r\n" * 3000
    msg = dkim_signed("auth-dkim-early", body=body)
    payload = data_payload(msg)
    cut = 80 * 1024
    with s.connect() as c:
        c.ehlo("client.test")
        assert c.cmd("MAIL FROM:<news@dkim.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(payload[:cut])
        s.wait_log(r"mailauth: dkim keys answered while the content streams")
        c.send(payload[cut:])
        r = c.read_reply()
        assert r.code == 250, r
        c.cmd("QUIT")
    ar = results_of(the_message(s, "auth-dkim-early"))[0]
    assert result(ar, "dkim").result == "pass", ar
    assert result(ar, "dmarc").result == "pass", ar


# ARC (RFC 8617): a message signed by dkim.test goes through the mailing list lists.test, which
# changes its subject (so the DKIM signature breaks), records what it found and seals it with
# dkimpy (tests/dns/dkim/arc.key, published at arc._domainkey.lists.test).
def arc_forwarded(marker, arc_in="none"):
    signed = dkim_signed(marker)
    listed = signed.replace(b"Subject: %s" % marker.encode(), b"Subject: [list] %s" % marker.encode())
    assert listed != signed
    listed = (b"Authentication-Results: lists.test; dkim=pass header.d=dkim.test; arc=%s\r\n"
              % arc_in.encode()) + listed
    with open(os.path.join(KEYS, "arc.key"), "rb") as f:
        key = f.read()
    sets = dkim.arc_sign(listed, b"arc", b"lists.test", key, b"lists.test")
    assert len(sets) == 3
    return b"".join(sets) + listed


def test_arc_sealed_forward_passes(judged):
    """DKIM fails (the list changed the subject), the list's seal passes: arc=pass with the
    client's address and oldest-pass (RFC 8617 §6), in the A-R and the log."""
    s = judged(dmarc_policy="report")
    r, _, _ = send(s, "list@lists.test", "news@dkim.test", "auth-arc-pass",
                   msg=arc_forwarded("auth-arc-pass"))
    assert r.code == 250, r
    msg = the_message(s, "auth-arc-pass")
    ar = results_of(msg)[0]
    assert result(ar, "dkim").result == "fail", ar
    a = result(ar, "arc")
    assert a is not None and a.result == "pass", ar
    props = {(p.type, p.name): p.value for p in a.properties}
    assert props == {("smtp", "remote-ip"): "127.0.0.1", ("header", "oldest-pass"): "0"}, props
    # The arriving ARC set is kept as it came, our field on top of it.
    assert msg.get_all("ARC-Seal") and msg.get_all("ARC-Authentication-Results")
    s.wait_log(r"authentication: .* dkim=fail:dkim.test arc=pass:lists.test dmarc=fail")


def test_arc_tampered_after_sealing_fails(judged):
    s = judged(dmarc_policy="report")
    sealed = arc_forwarded("auth-arc-tampered")
    tampered = sealed.replace(b"Some text.", b"Some test.")
    assert tampered != sealed
    r, _, _ = send(s, "list@lists.test", "news@dkim.test", "auth-arc-tampered", msg=tampered)
    assert r.code == 250, r
    msg = the_message(s, "auth-arc-tampered")
    ar = results_of(msg)[0]
    a = result(ar, "arc")
    assert a is not None and a.result == "fail", ar
    assert [(p.type, p.name) for p in a.properties] == [("smtp", "remote-ip")], a
    field = " ".join(msg["Authentication-Results"].split())
    assert "arc=fail (i=1 ARC-Message-Signature: body hash mismatch)" in field, field
    s.wait_log(r"authentication: .* arc=fail:lists.test dmarc=fail")


def test_arc_none_without_a_chain(judged):
    s = judged()
    r, _, _ = send(s, "news@dkim.test", "news@dkim.test", "auth-arc-none",
                   msg=dkim_signed("auth-arc-none"))
    assert r.code == 250, r
    ar = results_of(the_message(s, "auth-arc-none"))[0]
    a = result(ar, "arc")
    assert a is not None and a.result == "none" and not a.properties, ar
