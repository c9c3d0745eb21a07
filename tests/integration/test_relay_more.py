"""Relay out, continued: route options (tls=require, tls=verify, auth=), 8BITMIME and
SMTPUTF8 toward next hops without them, aliases to remote addresses, `route = D local`,
and the delay warning. The fixtures and helpers are those of test_relay_out.py: sinks
(ternlib.SinkServer) on 127.0.0.2:PORT, a tern relaying for 127.0.0.0/8 with retries
after 1 s, 2 s, 2 s ..., senders local (alice) so that notices land in her Maildir."""
import base64
import email
import email.policy
import email.utils
import time

import pytest

from ternlib import make_message, scaled
from test_relay_out import (SENDER, check_failed, parse_report, port, relay,  # noqa: F401 (fixtures)
                            result_lines, send, wait_bounces, wait_status)

RCPT = "user@x.test"


def fixed_route(port, domain="x.test", options=""):
    return ("%s 127.0.0.2:%d %s" % (domain, port, options)).rstrip()


def no_mail(sink):
    """True when no session of `sink` ever got as far as MAIL."""
    return all("MAIL" not in s.verbs() for s in sink.sessions)


def the_bounce(server, timeout=15):
    """Alice's only message (a bounce or a notice); no second one follows."""
    raw = wait_bounces(server, timeout=timeout)[0]
    server.wait_queue_idle()
    assert len(server.maildir("alice")) == 1, "more than one notice"
    return raw


# --------------------------------------------------------------------------- tls=require


def test_tls_require_without_starttls_defers(relay, sink_factory, port):
    sink = sink_factory("127.0.0.2", port)  # no STARTTLS
    server = relay(routes=[fixed_route(port, options="tls=require")])
    marker = "tls-require-none-%d" % time.monotonic_ns()
    qid = send(server, [RCPT], make_message(marker, to=RCPT))
    line = wait_status(server, qid, RCPT, "deferred")
    assert "dsn=4.7.4" in line, line
    # The retry (retry_min 1 s) is refused the same way; no notice is queued or delivered.
    wait_status(server, qid, RCPT, "deferred", count=2)
    assert server.queue_ids() == [qid]
    assert no_mail(sink), sink.sessions
    assert sink.messages == []
    assert server.maildir("alice") == [], "a tls=require deferral bounced"
    assert all("status=sent" not in l for l in result_lines(server, qid))


def test_tls_require_with_starttls_delivers(relay, sink_factory, port, certs):
    sink = sink_factory("127.0.0.2", port, starttls=certs["mx.test"])
    server = relay(routes=[fixed_route(port, options="tls=require")])
    marker = "tls-require-ok-%d" % time.monotonic_ns()
    qid = send(server, [RCPT], make_message(marker, to=RCPT))
    m = sink.wait_find(marker, timeout=15)[0]
    assert m.tls, m.session
    verbs = m.session.verbs()
    assert "STARTTLS" in verbs and verbs.index("STARTTLS") < verbs.index("MAIL"), verbs
    line = wait_status(server, qid, RCPT, "sent")
    assert "dsn=2.0.0" in line, line
    assert all(not s.messages for s in sink.sessions if not s.tls), "MAIL in the clear"


# --------------------------------------------------------------------------- tls=none


def test_tls_none_never_starts_tls(relay, sink_factory, port, certs):
    """tls=none (a next hop whose STARTTLS is known to be broken): no STARTTLS even though
    it is offered; the message goes in the clear."""
    sink = sink_factory("127.0.0.2", port, starttls=certs["mx.test"])
    server = relay(routes=[fixed_route(port, options="tls=none")])
    marker = "tls-none-%d" % time.monotonic_ns()
    qid = send(server, [RCPT], make_message(marker, to=RCPT))
    m = sink.wait_find(marker, timeout=15)[0]
    assert not m.tls, m.session
    assert any(k == "S" and "STARTTLS" in t for k, t in m.session.events), "not offered"
    assert all("STARTTLS" not in s.verbs() for s in sink.sessions), sink.sessions
    line = wait_status(server, qid, RCPT, "sent")
    assert "dsn=2.0.0" in line, line


# --------------------------------------------------------------------------- tls=verify


def test_tls_verify_untrusted_certificate_defers(relay, sink_factory, port, certs):
    """The sink's certificate is self-signed: the handshake fails verification, the mail
    waits (4.7.5) and is never sent in the clear, neither in that session nor in a new one."""
    sink = sink_factory("127.0.0.2", port, starttls=certs["mx.test"])
    server = relay(routes=[fixed_route(port, options="tls=verify")])
    marker = "tls-verify-%d" % time.monotonic_ns()
    qid = send(server, [RCPT], make_message(marker, to=RCPT))
    line = wait_status(server, qid, RCPT, "deferred")
    assert "dsn=4.7.5" in line, line
    wait_status(server, qid, RCPT, "deferred", timeout=15, count=2)  # retried, same outcome
    assert no_mail(sink), sink.sessions
    assert sink.messages == []
    assert all("status=sent" not in l for l in result_lines(server, qid))
    assert server.maildir("alice") == []


# --------------------------------------------------------------------------- auth=


SMARTHOST_RCPT = "someone@anywhere.example"


def via_smarthost(relay, sink_factory, port, certs, password):
    """A sink with STARTTLS and AUTH PLAIN for me/secret as the `*` route, logged in to
    as me/`password`; one message sent through it. Returns (server, sink, marker, qid)."""
    sink = sink_factory("127.0.0.2", port, starttls=certs["mx.test"], auth={"me": "secret"})
    server = relay(routes=["* 127.0.0.2:%d auth=me:%s" % (port, password)])
    marker = "smarthost-%s-%d" % (password, time.monotonic_ns())
    qid = send(server, [SMARTHOST_RCPT], make_message(marker, to=SMARTHOST_RCPT))
    return server, sink, marker, qid


def test_smarthost_auth_after_starttls(relay, sink_factory, port, certs):
    server, sink, marker, qid = via_smarthost(relay, sink_factory, port, certs, "secret")
    rcpt = SMARTHOST_RCPT
    m = sink.wait_find(marker, timeout=15)[0]
    verbs = m.session.verbs()
    assert "AUTH" in verbs, verbs
    assert verbs.index("STARTTLS") < verbs.index("AUTH") < verbs.index("MAIL"), verbs
    assert len(m.session.auth) == 1, m.session.auth
    b64, authzid, user, password = m.session.auth[0]
    assert (authzid, user, password) in (("", "me", "secret"), ("me", "me", "secret")), m.session.auth
    assert base64.b64decode(b64).split(b"\0")[1:] == [b"me", b"secret"], b64
    assert m.recipients == [rcpt]
    wait_status(server, qid, rcpt, "sent")
    # The credentials never travel in the clear.
    assert all(not s.auth for s in sink.sessions if not s.tls)


def test_smarthost_wrong_password_defers(relay, sink_factory, port, certs):
    server, sink, marker, qid = via_smarthost(relay, sink_factory, port, certs, "wrong")
    line = wait_status(server, qid, SMARTHOST_RCPT, "deferred")
    assert "dsn=4.7.0" in line, line
    wait_status(server, qid, SMARTHOST_RCPT, "deferred", count=2)  # the retry, refused too
    assert server.queue_ids() == [qid]
    attempts = [a for s in sink.sessions for a in s.auth]
    assert attempts and all(a[2:] == ("me", "wrong") for a in attempts), attempts
    assert no_mail(sink), sink.sessions
    assert server.maildir("alice") == []


# --------------------------------------------------------------------------- 8BITMIME


UTF8_TEXT = "Grüße aus Köln – ünïcödé ✓ naïve café\r\n" + "€" * 100 + "\r\n"


def test_8bitmime_downgraded_to_quoted_printable(relay, sink_factory, port):
    sink = sink_factory("127.0.0.2", port, eightbitmime=False)
    server = relay(routes=[fixed_route(port)])
    marker = "8bit-downgrade-%d" % time.monotonic_ns()
    body = (UTF8_TEXT + marker + "\r\n").encode("utf-8")
    content = make_message(marker, body=body, to=RCPT, extra_headers=[
        "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit"])
    qid = send(server, [RCPT], content, mail_params=" BODY=8BITMIME")
    m = sink.wait_find(marker, timeout=15)[0]
    wait_status(server, qid, RCPT, "sent")
    assert "BODY" not in m.mail_params or m.mail_params["BODY"].upper() == "7BIT", m.mail
    assert all(b < 128 for b in m.data), "8-bit octets sent to a 7-bit next hop"
    assert max(len(l) for l in m.data.split(b"\r\n")) <= 998
    msg = email.message_from_bytes(m.data, policy=email.policy.compat32)
    cte = msg.get_all("Content-Transfer-Encoding")
    assert cte and len(cte) == 1 and cte[0].strip().lower() == "quoted-printable", cte
    decoded = msg.get_payload(decode=True)
    assert decoded.replace(b"\r\n", b"\n") == body.replace(b"\r\n", b"\n"), decoded
    assert msg.get_content_charset() == "utf-8", msg["Content-Type"]


def test_8bit_header_to_7bit_next_hop_bounces(relay, sink_factory, port):
    sink = sink_factory("127.0.0.2", port, eightbitmime=False)
    server = relay(routes=[fixed_route(port)])
    marker = "8bit-header-%d" % time.monotonic_ns()
    content = make_message(marker + " Grüße", body="plain ascii body\r\n", to=RCPT)
    qid = send(server, [RCPT], content, mail_params=" BODY=8BITMIME")
    line = wait_status(server, qid, RCPT, "(?:bounced|sent)")
    assert "status=bounced" in line and "dsn=5.6.3" in line, (line, [m.data[:300] for m in sink.find(marker)])
    check_failed(server, the_bounce(server), RCPT, "5.6.3", marker)
    assert sink.find(marker) == []


# --------------------------------------------------------------------------- SMTPUTF8


@pytest.mark.parametrize("where", ["local-part", "header"])
def test_smtputf8_to_next_hop_without_it_bounces(relay, sink_factory, port, where):
    sink = sink_factory("127.0.0.2", port, smtputf8=False)
    server = relay(routes=[fixed_route(port)])
    marker = "smtputf8-%s-%d" % (where, time.monotonic_ns())
    if where == "local-part":
        rcpt, subject = "jürgen@x.test", marker
    else:
        rcpt, subject = RCPT, marker + " Grüße"
    qid = send(server, [rcpt], make_message(subject, to=rcpt), mail_params=" SMTPUTF8 BODY=8BITMIME")
    # The log writes non-ASCII octets as \xHH.
    line = wait_status(server, qid, rcpt.encode().decode("ascii", "backslashreplace"), "bounced")
    assert "dsn=5.6.7" in line, line
    # A bounce of SMTPUTF8 mail may be a global one (RFC 6533).
    msg, human, per_msg, per_rcpt, returned = parse_report(
        the_bounce(server), report_types=("delivery-status", "global-delivery-status"))
    assert len(per_rcpt) == 1, per_rcpt
    assert per_rcpt[0]["action"].lower() == "failed", per_rcpt
    assert per_rcpt[0]["status"] == "5.6.7", per_rcpt
    assert returned is not None and marker.encode() in returned.as_bytes()
    assert sink.find(marker) == [] and no_mail(sink), sink.sessions


# --------------------------------------------------------------------------- aliases, local


def test_alias_to_a_remote_address(relay, sink_factory, port):
    sink = sink_factory("127.0.0.2", port)
    server = relay(routes=[fixed_route(port, domain="remote-alias.example")],
                   aliases=["fwd: alice, someone@remote-alias.example"])
    marker = "alias-remote-%d" % time.monotonic_ns()
    send(server, ["fwd@example.test"], make_message(marker, to="fwd@example.test"))
    m = sink.wait_find(marker, timeout=15)[0]
    assert m.recipients == ["someone@remote-alias.example"], m.rcpt_lines
    local = server.wait_delivered("alice", 1, timeout=15)
    assert [x for x in local if marker.encode() in x], local
    server.wait_queue_idle()
    assert len(server.maildir("alice")) == 1
    assert len(sink.find(marker)) == 1


def test_route_local_for_a_domain_not_in_local_domains(relay, sink_factory, port):
    sink = sink_factory("127.0.0.2", port)
    server = relay(routes=["other.example local", "* 127.0.0.2:%d" % port])
    marker = "route-local-%d" % time.monotonic_ns()
    send(server, ["alice@other.example"], make_message(marker, to="alice@other.example"),
         sender="sender@example.org")
    got = server.wait_delivered("alice", 1, timeout=15, domain="other.example")
    assert marker.encode() in got[0]
    server.wait_queue_idle()
    assert sink.sessions == [], "other.example was relayed"


# --------------------------------------------------------------------------- delay_warning


def test_delay_warning_sent_once(relay, sink_factory, port):
    sink = sink_factory("127.0.0.2", port)
    sink.default_rcpt_reply = "450 4.2.1 mailbox busy"
    server = relay(routes=[fixed_route(port)], delay_warning="2s")
    marker = "delay-warning-%d" % time.monotonic_ns()
    t0 = time.monotonic()
    qid = send(server, [RCPT], make_message(marker, to=RCPT))
    raw = wait_bounces(server, timeout=20)[0]
    assert time.monotonic() - t0 >= 2, "warned before delay_warning"
    msg, human, per_msg, per_rcpt, returned = parse_report(raw)
    assert len(per_rcpt) == 1, per_rcpt
    r = per_rcpt[0]
    assert r["final-recipient"].lower() == "rfc822; " + RCPT, r
    assert r["action"].lower() == "delayed", r
    assert r["status"].startswith("4."), r
    assert "will-retry-until" in r, r
    assert email.utils.parsedate_to_datetime(r["will-retry-until"]) is not None, r
    # Still retried; no second warning: two more attempts after the warning was delivered,
    # and nothing but the message itself in the queue.
    deferrals = len(result_lines(server, qid, RCPT))
    wait_status(server, qid, RCPT, "deferred", count=deferrals + 2, timeout=20)
    assert server.queue_ids() == [qid]
    assert len(server.maildir("alice")) == 1, "a second delay warning"
    assert all("status=deferred" in l for l in result_lines(server, qid, RCPT)), result_lines(server, qid, RCPT)
