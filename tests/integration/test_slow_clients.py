"""Slow and idle clients: the deadline for a whole command line, the minimum rate of message
content, and the cap of the AUTH failure delay (hardening issue, item 6)."""
import time

from ternlib import b64, make_message, scaled

# --------------------------------------------------------------------------- AUTH delay


def test_auth_failure_delay_capped(tls_factory):
    """auth_failure_delay_max caps the growing delay: with 2 s the fifth failure, which used
    to wait 16 s, is answered after 2 s, inside the 12 s this client waits for a reply."""
    server = tls_factory(auth_failures_max=10, auth_failure_delay_max="2s")
    want = [1, 2, 2, 2, 2, 2]
    with server.connect("smtps") as c:
        c.ehlo()
        for i, low in enumerate(want):
            t0 = time.monotonic()
            # Not scaled: it stands for a client that gives up after 12 s, and what the
            # sanitizers slow down (the password hash) takes a fraction of a second.
            r = c.cmd("AUTH PLAIN " + b64(b"\0alice\0guess-%d" % i), timeout=12)
            waited = time.monotonic() - t0
            assert r.code == 535 and r.enh == "5.7.8", (i, r)
            # Waiting is never shorter than asked: the delay is really there.
            assert waited >= low - 0.1, (i, waited)
    server.wait_log(r"SASL PLAIN authentication failed", count=len(want))
