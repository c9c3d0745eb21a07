"""Prometheus metrics (metrics_listen): the exposition read with curl and urllib and parsed
strictly, exact deltas of every counter after real SMTP traffic (mx, submission with
STARTTLS and AUTH, smtps, relaying to a hermetic sink and to a port that refuses), the
queue's size and oldest age while a message is deferred, the latency histogram, counters
surviving a restart of the children, hostile HTTP requests, and config_check refusing a
non-loopback address."""
import math
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from ternlib import (PASSWORDS, TERN_BIN, SMTPClient, client_context, data_payload, free_port,
                     free_port_on, make_message, scaled, wait_peer_read)

SENDER = "alice@example.test"
HOSTS = ["127.0.0.2", "127.0.0.3"]

# --------------------------------------------------------------------------- the format

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_exposition(text):
    """Parses text format 0.0.4 strictly. Returns ({(name, labels): value}, {family: type}).
    Fails on anything a strict reader would refuse: a sample before its family's HELP and
    TYPE, a family split in two, bad names or label syntax, duplicate series, a counter
    not named *_total, a histogram whose buckets are not cumulative or lack +Inf."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    series, types, helps, seen_families = {}, {}, {}, []
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (n, line)
        assert line != "", "empty line at " + where
        if line.startswith("#"):
            m = re.match(r"# (HELP|TYPE) (\S+) (.*)\Z", line)
            assert m, "bad comment " + where
            kind, name, rest = m.groups()
            assert NAME_RE.match(name), "bad metric name " + where
            assert name.startswith("tern_"), "no tern_ prefix " + where
            if current != name:
                assert name not in seen_families, "family %s split or repeated at %s" % (name, where)
                seen_families.append(name)
                current = name
            if kind == "HELP":
                assert name not in helps, "second HELP " + where
                assert rest.strip(), "empty HELP " + where
                helps[name] = rest
            else:
                assert name not in types, "second TYPE " + where
                assert rest in TYPES, "bad type " + where
                assert name in helps, "TYPE before HELP " + where
                types[name] = rest
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^\n]*\})? (\S+)\Z", line)
        assert m, "bad sample " + where
        name, labelpart, value = m.groups()
        family = name
        if current is not None and types.get(current) == "histogram" and name in (
                current + "_bucket", current + "_sum", current + "_count"):
            family = current
        assert family == current, "sample outside its family's block " + where
        assert family in types and family in helps, "sample before HELP/TYPE " + where
        labels = []
        if labelpart:
            inner = labelpart[1:-1]
            pos = 0
            while pos < len(inner):
                lm = LABEL_RE.match(inner, pos)
                assert lm, "bad labels " + where
                labels.append((lm.group(1), lm.group(2)))
                pos = lm.end()
                if pos < len(inner):
                    assert inner[pos] == ",", "bad label separator " + where
                    pos += 1
            names = [k for k, _ in labels]
            assert len(names) == len(set(names)), "repeated label " + where
        v = float(value)  # raises on garbage
        assert not math.isnan(v), where
        key = (name, tuple(sorted(labels)))
        assert key not in series, "duplicate series " + where
        series[key] = v
    for fam, t in types.items():
        if t == "counter":
            assert fam.endswith("_total"), "counter %s not named *_total" % fam
            for (name, _), v in series.items():
                if name == fam:
                    assert v >= 0
        if t == "histogram":
            buckets = sorted(((float("inf") if dict(l)["le"] == "+Inf" else float(dict(l)["le"])), v)
                             for (name, l), v in series.items() if name == fam + "_bucket")
            assert buckets and buckets[-1][0] == float("inf"), "%s: no +Inf bucket" % fam
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), "%s: buckets not cumulative: %r" % (fam, buckets)
            assert series[(fam + "_count", ())] == buckets[-1][1], "%s: _count != +Inf" % fam
            assert (fam + "_sum", ()) in series
    assert set(types) == set(helps), "a family without TYPE or HELP"
    return series, types


def lbl(**kw):
    return tuple(sorted(kw.items()))


# --------------------------------------------------------------------------- scraping


def scrape_raw(port, host="127.0.0.1"):
    with urllib.request.urlopen("http://%s:%d/metrics" % (host, port), timeout=scaled(10)) as r:
        assert r.status == 200
        ctype = r.headers["Content-Type"]
        assert ctype.startswith("text/plain; version=0.0.4"), ctype
        return r.read().decode("utf-8")


def scrape(port):
    return parse_exposition(scrape_raw(port))[0]


def curl(*args):
    p = subprocess.run(["curl", "-sS", "--max-time", str(int(scaled(15)))] + list(args),
                       capture_output=True, timeout=scaled(30))
    return p


def counters(series, types):
    return {k: v for k, v in series.items() if types.get(k[0]) == "counter"}


def delta(before, after):
    out = {}
    for k, v in after.items():
        d = v - before.get(k, 0)
        if d:
            out[k] = d
    return out


def wait_metric(port, pred, timeout=15):
    """Scrapes until pred(series) holds; returns the series (the last one on timeout)."""
    deadline = time.monotonic() + scaled(timeout)
    series = scrape(port)
    while not pred(series) and time.monotonic() < deadline:
        time.sleep(0.1)
        series = scrape(port)
    return series


def open_total(series):
    return sum(v for (n, _), v in series.items() if n == "tern_smtp_sessions_open")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def ports():
    return {"sink": free_port_on(HOSTS), "down": free_port_on(HOSTS), "metrics": free_port()}


@pytest.fixture
def mserver(tls_factory, sink_factory, ports):
    """A TLS tern with metrics, relaying for 127.0.0.0/8: ok.test to a sink on 127.0.0.2
    (gone@ok.test refused 550), down.test to 127.0.0.3 where nothing listens. Retries wait an
    hour, so a deferral happens exactly once during a test."""
    sink = sink_factory("127.0.0.2", ports["sink"])
    sink.rcpt_replies = {"gone@ok.test": "550 5.1.1 no such user here"}
    server = tls_factory(
        metrics_listen="127.0.0.1:%d" % ports["metrics"],
        relay_networks="127.0.0.0/8", retry_min="1h", retry_max="2h",
        extra_lines=["route = ok.test 127.0.0.2:%d" % ports["sink"],
                     "route = down.test 127.0.0.3:%d" % ports["down"]])
    server.sink = sink
    server.mport = ports["metrics"]
    # The harness's readiness probe is a session of its own: let it end.
    wait_metric(server.mport, lambda s: open_total(s) == 0)
    return server


def send(server, rcpts, rejected=(), rcpt_params=None, listener="mx"):
    """One transaction: rcpts accepted, `rejected` refused with 550; returns the queue id."""
    rcpt_params = rcpt_params or {}
    with server.connect(listener) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        for r in rcpts:
            c.expect("RCPT TO:<%s>%s" % (r, rcpt_params.get(r, "")), 250)
        for r in rejected:
            assert c.cmd("RCPT TO:<%s>" % r).code == 550
        c.expect("DATA", 354)
        c.send(data_payload(make_message("metrics-%d" % time.monotonic_ns(), to=rcpts[0])))
        reply = c.read_reply()
        assert reply.code == 250, reply
        c.cmd("QUIT")
    return re.search(r"queued as (\S+)", reply.text).group(1)


def wait_status(server, qid, rcpt, status, timeout=15):
    server.wait_log(r"%s: to=<%s>[^\n]*status=%s" % (re.escape(qid), re.escape(rcpt), status),
                    timeout=timeout)


# --------------------------------------------------------------------------- tests


def test_mail_counters_exact_deltas(mserver):
    port = mserver.mport
    text = scrape_raw(port)
    before, types = parse_exposition(text)
    assert types["tern_delivery_latency_seconds"] == "histogram"
    assert types["tern_queue_oldest_age_seconds"] == "gauge"
    assert before[("tern_queue_messages", ())] == 0
    assert before[("tern_queue_oldest_age_seconds", ())] == 0

    q1 = send(mserver, ["alice@example.test"])
    q2 = send(mserver, ["bob@example.test", "carol@example.test"])
    q3 = send(mserver, ["dave@example.test"], rejected=["nosuch@example.test"])
    q4 = send(mserver, ["user@ok.test", "gone@ok.test"], rcpt_params={"gone@ok.test": " NOTIFY=NEVER"})
    q5 = send(mserver, ["user@down.test"])
    for qid, rcpt, st in [(q1, "alice@example.test", "sent"), (q2, "bob@example.test", "sent"),
                          (q2, "carol@example.test", "sent"), (q3, "dave@example.test", "sent"),
                          (q4, "user@ok.test", "sent"), (q4, "gone@ok.test", "bounced"),
                          (q5, "user@down.test", "deferred")]:
        wait_status(mserver, qid, rcpt, st)
    after = wait_metric(port, lambda s: open_total(s) == 0 and
                        s[("tern_smtp_sessions_total", lbl(role="mx", tls="no", auth="no"))] -
                        before[("tern_smtp_sessions_total", lbl(role="mx", tls="no", auth="no"))] >= 5)
    d = delta(counters(before, types), counters(after, types))
    relay = {k: d.pop(k) for k in list(d) if k[0].startswith("tern_relay_")}
    assert d == {
        ("tern_messages_received_total", ()): 5,
        ("tern_recipients_received_total", ()): 7,
        ("tern_recipients_delivered_total", ()): 5,
        ("tern_recipients_deferred_total", ()): 1,
        ("tern_recipients_bounced_total", ()): 1,
        ("tern_delivery_errors_total", lbl(domain="ok.test", result="bounced")): 1,
        ("tern_delivery_errors_total", lbl(domain="down.test", result="deferred")): 1,
        ("tern_smtp_connections_total", lbl(role="mx")): 5,
        ("tern_smtp_sessions_total", lbl(role="mx", tls="no", auth="no")): 5,
    }, d
    # The sink took one connection at least; 127.0.0.3 refused at least one.
    assert relay.get(("tern_relay_connections_total", lbl(result="ok")), 0) >= 1, relay
    assert relay.get(("tern_relay_connections_total", lbl(result="failed")), 0) >= 1, relay

    # The histogram: one observation per delivered recipient, cumulative buckets.
    hist = {dict(l)["le"]: v - before[(n, l)] for (n, l), v in after.items()
            if n == "tern_delivery_latency_seconds_bucket"}
    assert hist["+Inf"] == 5
    assert after[("tern_delivery_latency_seconds_count", ())] - \
        before[("tern_delivery_latency_seconds_count", ())] == 5
    bounds = sorted(float(k) for k in hist if k != "+Inf")
    assert bounds[0] == 0.01 and bounds[-1] == 3600
    assert hist["3600"] == 5  # all of them within the hour
    s = after[("tern_delivery_latency_seconds_sum", ())] - before[("tern_delivery_latency_seconds_sum", ())]
    assert 0 < s < 5 * scaled(30)

    # The deferred message waits: the queue holds it, and it ages.
    assert after[("tern_queue_messages", ())] == 1
    assert after[("tern_queue_recipients", ())] == 1
    age1 = after[("tern_queue_oldest_age_seconds", ())]
    assert age1 > 0
    time.sleep(1.1)
    later = scrape(port)
    assert later[("tern_queue_oldest_age_seconds", ())] >= age1 + 1.0


def test_sessions_by_role_tls_and_auth(mserver):
    port = mserver.mport
    before, types = parse_exposition(scrape_raw(port))
    # mx: a session stays open while we look.
    c = mserver.connect("mx")
    c.ehlo()
    open_now = wait_metric(port, lambda s: s[("tern_smtp_sessions_open", lbl(role="mx"))] == 1)
    assert open_now[("tern_smtp_sessions_open", lbl(role="mx"))] == 1
    c.cmd("QUIT")
    c.close()
    # submission: STARTTLS then AUTH, one success, one failure in another session.
    c = mserver.connect("submission")
    c.ehlo()
    c.starttls()
    c.ehlo()
    assert c.auth_plain("alice", PASSWORDS["alice"]).code == 235
    c.cmd("QUIT")
    c.close()
    c = mserver.connect("submission")
    c.ehlo()
    c.starttls()
    c.ehlo()
    assert c.auth_plain("alice", "wrong-password").code == 535
    c.cmd("QUIT")
    c.close()
    # smtps: implicit TLS and AUTH; then a client that fails the handshake.
    c = mserver.connect("smtps")
    c.ehlo()
    assert c.auth_plain("bob@example.test", PASSWORDS["bob@example.test"]).code == 235
    c.cmd("QUIT")
    c.close()
    with socket.create_connection(("127.0.0.1", mserver.ports["smtps"]), timeout=scaled(10)) as s:
        s.sendall(b"EHLO not-a-tls-client\r\n")
        s.settimeout(scaled(10))
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
    after = wait_metric(port, lambda s: open_total(s) == 0 and sum(
        v - before.get(k, 0) for k, v in s.items() if k[0] == "tern_smtp_sessions_total") >= 5)
    d = delta(counters(before, types), counters(after, types))
    assert d == {
        ("tern_smtp_connections_total", lbl(role="mx")): 1,
        ("tern_smtp_connections_total", lbl(role="submission")): 2,
        ("tern_smtp_connections_total", lbl(role="smtps")): 2,
        ("tern_smtp_sessions_total", lbl(role="mx", tls="no", auth="no")): 1,
        ("tern_smtp_sessions_total", lbl(role="submission", tls="yes", auth="yes")): 1,
        ("tern_smtp_sessions_total", lbl(role="submission", tls="yes", auth="no")): 1,
        ("tern_smtp_sessions_total", lbl(role="smtps", tls="yes", auth="yes")): 1,
        ("tern_smtp_sessions_total", lbl(role="smtps", tls="no", auth="no")): 1,
        ("tern_smtp_tls_handshakes_total", lbl(role="submission", result="ok")): 2,
        ("tern_smtp_tls_handshakes_total", lbl(role="smtps", result="ok")): 1,
        ("tern_smtp_tls_handshakes_total", lbl(role="smtps", result="failed")): 1,
        ("tern_smtp_auth_total", lbl(role="submission", result="success")): 1,
        ("tern_smtp_auth_total", lbl(role="submission", result="failure")): 1,
        ("tern_smtp_auth_total", lbl(role="smtps", result="success")): 1,
    }, d


def test_counters_survive_a_restart_of_the_children(mserver):
    port = mserver.mport
    send(mserver, ["alice@example.test"])
    qid = send(mserver, ["user@down.test"])
    wait_status(mserver, qid, "user@down.test", "deferred")
    before = wait_metric(port, lambda s: open_total(s) == 0 and s[("tern_recipients_delivered_total", ())] >= 1)
    pids = [int(p) for p in re.findall(r"tern/qmgr\[(\d+)\]", mserver.log())]
    assert pids, "no queue process in the log"
    os.kill(pids[-1], signal.SIGKILL)
    mserver.wait_log(r"restarting the smtp, queue and delivery processes", timeout=20)
    # The endpoint comes back with the new queue process; nothing went back to 0.
    deadline = time.monotonic() + scaled(20)
    after = None
    while time.monotonic() < deadline:
        try:
            after = scrape(port)
            if after[("tern_queue_messages", ())] == 1:
                break
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    assert after is not None, "the metrics endpoint did not come back"
    for name in ("tern_messages_received_total", "tern_recipients_received_total",
                 "tern_recipients_delivered_total", "tern_recipients_bounced_total"):
        assert after[(name, ())] == before[(name, ())], name
    assert after[("tern_recipients_deferred_total", ())] >= before[("tern_recipients_deferred_total", ())]
    for k, v in before.items():
        if k[0] in ("tern_smtp_sessions_total", "tern_smtp_connections_total",
                    "tern_delivery_errors_total", "tern_relay_connections_total"):
            assert after.get(k, 0) >= v, k
    assert after[("tern_smtp_sessions_total", lbl(role="mx", tls="no", auth="no"))] >= 2
    # The deferred message is still counted (recovered from the spool), and still aging.
    assert after[("tern_queue_messages", ())] == 1
    assert after[("tern_queue_oldest_age_seconds", ())] > 0
    # And the new processes count on from there.
    send(mserver, ["carol@example.test"])
    again = wait_metric(port, lambda s: s[("tern_recipients_delivered_total", ())] ==
                        before[("tern_recipients_delivered_total", ())] + 1)
    assert again[("tern_messages_received_total", ())] == before[("tern_messages_received_total", ())] + 1


# --------------------------------------------------------------------------- HTTP


@pytest.fixture
def plain(tern_factory):
    port = free_port()
    server = tern_factory(metrics_listen="127.0.0.1:%d" % port)
    server.mport = port
    return server


def http_raw(port, data, timeout=None, shut=True):
    """Sends raw bytes, returns everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout or scaled(15)) as s:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


def status_of(resp):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", resp)
    assert m, resp[:200]
    return int(m.group(1))


def still_serving(port):
    series = scrape(port)
    assert ("tern_messages_received_total", ()) in series


def test_curl_get_head_and_errors(plain):
    port = plain.mport
    p = curl("-i", "http://127.0.0.1:%d/metrics" % port)
    assert p.returncode == 0, p.stderr
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), head
    assert b"\r\nConnection: close" in head
    m = re.search(rb"\r\nContent-Length: (\d+)", head)
    assert m and int(m.group(1)) == len(body)
    parse_exposition(body.decode())
    # HTTP/1.0 and a query string
    p = curl("-0", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:%d/metrics?x=1" % port)
    assert p.stdout == b"200"
    # HEAD: headers, no body
    resp = http_raw(port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(resp) == 200 and resp.endswith(b"\r\n\r\n"), resp
    for args, code in [(["-X", "POST", "-d", "x=1"], "405"), (["-X", "DELETE"], "405"), ([], None)]:
        url = "http://127.0.0.1:%d/metrics" % port if code else "http://127.0.0.1:%d/other" % port
        p = curl("-s", "-o", "/dev/null", "-w", "%{http_code}", *args, url)
        assert p.stdout.decode() == (code or "404"), (args, p.stdout)
    resp = http_raw(port, b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    assert status_of(resp) == 405 and b"\r\nAllow: GET, HEAD\r\n" in resp
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=scaled(10))
    assert e.value.code == 404
    for raw, code in [(b"GET /metrics\r\n\r\n", 400),  # HTTP/0.9
                      (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
                      (b"GET metrics HTTP/1.1\r\n\r\n", 400),
                      (b"GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n", 400),
                      (b"GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n", 400),
                      (b"\x00\x01\x02\r\n\r\n", 400)]:
        assert status_of(http_raw(port, raw)) == code, raw
    still_serving(port)


def test_huge_request_line_and_headers(plain):
    port = plain.mport
    resp = http_raw(port, b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n", shut=False)
    assert status_of(resp) == 414, resp[:200]
    resp = http_raw(port, b"GET /metrics HTTP/1.1\r\n" + b"X-Filler: " + b"b" * 20000 + b"\r\n\r\n",
                    shut=False)
    assert status_of(resp) == 431, resp[:200]
    many = b"".join(b"X-%d: y\r\n" % i for i in range(500))
    resp = http_raw(port, b"GET /metrics HTTP/1.1\r\n" + many + b"\r\n")
    assert status_of(resp) == 431
    still_serving(port)


def test_slowloris_and_the_scraper_cap(plain):
    port = plain.mport
    # Eight clients that send a byte now and then take every slot (the server has read each
    # one's first bytes: it has them all)...
    idle = [socket.create_connection(("127.0.0.1", port), timeout=scaled(15)) for _ in range(8)]
    try:
        idle[0].sendall(b"GET /met")
        for s in idle[1:]:
            s.sendall(b"G")
        for s in idle:
            wait_peer_read(s)
        # ...so a ninth is closed at once, without an answer.
        with socket.create_connection(("127.0.0.1", port), timeout=scaled(10)) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
        # The trickling client is not saved by its bytes: the deadline is for the whole
        # request (5 s), after which each gets 408 and is closed.
        t0 = time.monotonic()
        for i in range(4):
            time.sleep(0.5)
            try:
                idle[0].sendall(b"r")
            except OSError:
                break
        for s in idle:
            s.settimeout(scaled(15))
            data = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
            assert status_of(data) == 408, data
        assert time.monotonic() - t0 < scaled(12)
    finally:
        for s in idle:
            s.close()
    # Once the server has seen those closes, the slots are free again.
    deadline = time.monotonic() + scaled(5)
    while True:
        try:
            still_serving(port)
            break
        except (OSError, urllib.error.URLError):
            assert time.monotonic() < deadline, "the endpoint did not recover"
            time.sleep(0.1)


def test_ipv6_loopback(tern_factory):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            port = s.getsockname()[1]
    except OSError:
        pytest.skip("no IPv6 loopback here")
    tern_factory(metrics_listen="[::1]:%d" % port)
    p = curl("-g", "-s", "http://[::1]:%d/metrics" % port)
    assert p.returncode == 0, p.stderr
    parse_exposition(p.stdout.decode())


def check_config(tmp_path, value):
    conf = tmp_path / "tern.conf"
    conf.write_text("hostname = mx.test\nlisten = 127.0.0.1:%d mx\nlocal_domains = example.test\n"
                    "spool_dir = %s\nmetrics_listen = %s\n" % (free_port(), tmp_path / "spool", value))
    return subprocess.run([TERN_BIN, "check-config", "-c", str(conf)], capture_output=True,
                          timeout=scaled(30))


@pytest.mark.parametrize("value", ["0.0.0.0:%d", "[::]:%d", "192.0.2.1:%d", "[2001:db8::1]:%d"])
def test_check_config_refuses_non_loopback(tmp_path, value):
    p = check_config(tmp_path, value % free_port())
    assert p.returncode == 78, p
    assert b"metrics_listen" in p.stderr and b"loopback" in p.stderr, p.stderr


@pytest.mark.parametrize("value", ["127.0.0.1:%d", "127.0.0.9:%d", "[::1]:%d"])
def test_check_config_accepts_loopback(tmp_path, value):
    p = check_config(tmp_path, value % free_port())
    assert p.returncode == 0, p


@pytest.mark.parametrize("value", ["localhost:9100", "127.0.0.1", "::1:9100", "127.0.0.1:0"])
def test_check_config_syntax(tmp_path, value):
    p = check_config(tmp_path, value)
    assert p.returncode == 78 and b"metrics_listen" in p.stderr, p


def test_serve_refuses_non_loopback_without_binding(tern_factory):
    """Even when check-config was never run: the daemon does not start (and never binds)."""
    port = free_port()
    server = tern_factory(metrics_listen="0.0.0.0:%d" % port, start=False)
    with pytest.raises(AssertionError):
        server.start(timeout=scaled(5))
    log = server.log()
    assert "not a loopback address" in log
    # A bind would have come after the check and said where it listens (a
    # probe of the port itself would race with parallel tests, and the
    # tests bind nothing outside 127.0.0.0/8).
    assert "metrics on" not in log and "cannot listen" not in log, log


def test_off_by_default(server):
    assert "metrics on" not in server.log()


def test_open_sessions_across_a_reload(mserver):
    """A reload (SIGHUP) replaces the smtp process while the old one drains: the gauge is
    per process, so it follows the sessions really open, and never wraps below 0."""
    port = mserver.mport
    before = scrape(port)
    old = mserver.connect("mx")
    old.ehlo()
    wait_metric(port, lambda s: s[("tern_smtp_sessions_open", lbl(role="mx"))] == 1)
    os.kill(mserver.proc.pid, signal.SIGHUP)
    mserver.wait_log(r"tern/master\[\d+\]: reload", timeout=15)
    new = mserver.connect("mx")
    new.ehlo()
    # The old session is ended by the drain, or by us: either way its process's decrement
    # must not touch the new process's count.
    old.close()
    mserver.wait_log(r"old smtp process \d+ has finished draining", timeout=40)
    one = wait_metric(port, lambda s: s[("tern_smtp_sessions_open", lbl(role="mx"))] == 1)
    assert one[("tern_smtp_sessions_open", lbl(role="mx"))] == 1
    new.cmd("QUIT")
    new.close()
    after = wait_metric(port, lambda s: open_total(s) == 0)
    assert open_total(after) == 0
    key = ("tern_smtp_sessions_total", lbl(role="mx", tls="no", auth="no"))
    assert after[key] - before[key] == 2
    key = ("tern_smtp_connections_total", lbl(role="mx"))
    assert after[key] - before[key] == 2
