"""DMARC aggregate reports (RFC 7489 §7.2): tern judges real SMTP mail with the test DNS
server's records (tests/dns/zone.conf.in), keeps one row per message and policy domain in the
spool, and `tern dmarc report` sends each domain's report to its rua through the queue. The
reports are read back from the rua mailbox with Python's email and gzip modules and validated
with xmllint against the RFC's schema (tests/dmarc/report_xsd.py's derived copy of Appendix C)."""
import email
import email.policy
import gzip
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import dkim
import pytest

from ternlib import HOSTNAME, SANITIZER_MARKERS, TERN_BIN, data_payload, make_message, poll, scaled

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "dmarc"))
import report_xsd  # noqa: E402  (derive(), xmllint(), the schema's path)

KEYS = os.path.join(os.path.dirname(HERE), "dns", "dkim")
RUA_USER = "dmarc@rep.test"


@pytest.fixture
def reporter(tern_factory, dns_server, tmp_path):
    """A judging server whose local domain rep.test holds the reports' mailbox."""
    from ternlib import DEFAULT_USERS
    return tern_factory(users=DEFAULT_USERS + [RUA_USER], mail_auth_checks="yes",
                        resolver=dns_server.address, local_domains="example.test, localhost, rep.test")


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("xsd") / "rfc7489-fixed.xsd")
    with open(report_xsd.SCHEMA) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(report_xsd.derive(text))
    return path


def send(server, mail_from, frm, marker, msg=None):
    """One message to alice over SMTP; returns the reply to the end of DATA."""
    with server.connect() as c:
        c.ehlo("client.test")
        assert c.cmd("MAIL FROM:<%s>" % mail_from).code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(data_payload(msg or make_message(marker, frm=frm)))
        r = c.read_reply()
        c.cmd("QUIT")
        return r


def dkim_signed(marker, frm):
    """Signed by dkimpy as dkim.test (selector rsa): a pass that is not aligned with frm."""
    with open(os.path.join(KEYS, "rsa.key"), "rb") as f:
        key = f.read()
    msg = make_message(marker, frm=frm, body=("%s\r\n" % marker).encode())
    sig = dkim.sign(msg, b"rsa", b"dkim.test", key, canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"message-id"])
    return sig.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + msg


def rows_files(server):
    d = os.path.join(server.spool, "dmarc")
    return sorted(n for n in os.listdir(d) if n.endswith(".rows")) if os.path.isdir(d) else []


def rows(server):
    out = []
    for n in rows_files(server):
        with open(os.path.join(server.spool, "dmarc", n), "rb") as f:
            out += f.read().splitlines()
    return out


def dmarc_report(server, *args):
    """`tern dmarc report ARGS -c CONFIG`: (exit status, output)."""
    p = subprocess.run([TERN_BIN, "dmarc", "report", *args, "-c", server.config_path],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=scaled(120))
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    for m in SANITIZER_MARKERS:
        assert m not in out, out
    return p.returncode, out


def report_all_days(server, *args):
    """Runs the command for each day that has rows (one, unless the test crossed midnight UTC);
    returns the outputs joined."""
    outs = []
    for name in rows_files(server):
        rc, out = dmarc_report(server, "--day", name[:10], *args)
        assert rc == 0, out
        outs.append(out)
    assert outs, "no rows file in %s" % os.path.join(server.spool, "dmarc")
    return "\n".join(outs)


def report_of(raw):
    """(message, file name, XML root) of one delivered report."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = [p for p in msg.walk() if p.get_content_type() == "application/gzip"]
    assert len(parts) == 1, msg
    name = parts[0].get_filename()
    return msg, name, gzip.decompress(parts[0].get_payload(decode=True))


def records(root):
    """{(source_ip, header_from, disposition, dkim, spf): count} of a report."""
    out = {}
    for rec in root.iter("record"):
        row = rec.find("row")
        pe = row.find("policy_evaluated")
        key = (row.findtext("source_ip"), rec.findtext("identifiers/header_from"),
               pe.findtext("disposition"), pe.findtext("dkim"), pe.findtext("spf"))
        out[key] = out.get(key, 0) + int(row.findtext("count"))
    return out


def test_reports_reach_the_rua_and_validate(reporter, schema, tmp_path):
    s = reporter
    sent = [
        ("a@rep.test", "a@rep.test", "rep-pass-1"),
        ("a@rep.test", "a@rep.test", "rep-pass-2"),
        ("a@rep.test", "b@rep.test", "rep-pass-3"),
        ("mallory@spffail.test", "x@rep.test", "rep-fail"),  # SPF of another domain: fail
        ("n@ext.test", "n@ext.test", "ext-pass"),
        ("mallory@spffail.test", "ceo@ext.test", "ext-quarantine"),  # p=quarantine: to Junk
        ("n@noext.test", "n@noext.test", "noext-pass"),
        ("n@small.rep.test", "n@small.rep.test", "small-pass"),
    ]
    for mail_from, frm, marker in sent:
        assert send(s, mail_from, frm, marker).code == 250, marker
    r = send(s, "n@ext.test", "n@ext.test", "ext-dkim", msg=dkim_signed("ext-dkim", "n@ext.test"))
    assert r.code == 250, r
    # A message has its row before its 250: the queue reads the channel in order.
    lines = rows(s)
    assert len(lines) == 9, lines
    assert all(l.startswith(b"dmarc1\t") for l in lines), lines

    out = report_all_days(s)
    # noext.test's rua is outside its Organizational Domain, and rep.test does not confirm it;
    # small.rep.test's report is over its rua's !1k.
    assert re.search(r"noext.test: not sent to <dmarc@rep.test>: rep.test does not confirm", out), out
    assert re.search(r"small.rep.test: not sent to <dmarc@rep.test>: .* over the rua's limit of 1024", out), out
    days = len(rows_files(s))
    got = s.wait_delivered("dmarc", 2 * days, domain="rep.test", timeout=30)
    by_domain = {}
    for raw in got:
        msg, name, xml = report_of(raw)
        # RFC 7489 §7.2.1.1: receiver!policy-domain!begin!end.xml.gz and the Subject.
        m = re.fullmatch(r"%s!([a-z.]+)!(\d+)!(\d+)\.xml\.gz" % re.escape(HOSTNAME), name)
        assert m, name
        domain, begin, end = m.group(1), int(m.group(2)), int(m.group(3))
        assert begin % 86400 == 0 and end == begin + 86399, name
        subject = " ".join(msg["Subject"].split())
        assert re.fullmatch(r"Report Domain: %s Submitter: %s Report-ID: <[^>]+>" % (
            re.escape(domain), re.escape(HOSTNAME)), subject), subject
        assert msg["From"].addresses[0].addr_spec == "noreply-dmarc@" + HOSTNAME
        path = tmp_path / name.replace("!", "_")[:-3]
        path.write_bytes(xml)
        rc, err = report_xsd.xmllint(schema, str(path))
        assert rc == 0, "%s does not validate: %s\n%s" % (name, err, xml.decode())
        root = ET.fromstring(xml)
        assert root.findtext("report_metadata/org_name") == HOSTNAME
        assert root.findtext("report_metadata/date_range/begin") == str(begin)
        assert root.findtext("policy_published/domain") == domain
        agg = by_domain.setdefault(domain, {"records": {}, "roots": []})
        agg["roots"].append(root)
        for k, v in records(root).items():
            agg["records"][k] = agg["records"].get(k, 0) + v
    assert sorted(by_domain) == ["ext.test", "rep.test"], sorted(by_domain)

    rep = by_domain["rep.test"]["records"]
    assert rep == {
        ("127.0.0.1", "rep.test", "none", "fail", "pass"): 3,
        ("127.0.0.1", "rep.test", "none", "fail", "fail"): 1,
    }, rep
    root = by_domain["rep.test"]["roots"][-1]
    assert root.findtext("policy_published/p") == "none"
    spf = {(e.findtext("domain"), e.findtext("result")) for e in root.iter("spf") if e.find("scope") is not None}
    assert ("rep.test", "pass") in spf and ("spffail.test", "fail") in spf, spf

    ext = by_domain["ext.test"]["records"]
    assert ext == {
        ("127.0.0.1", "ext.test", "none", "fail", "pass"): 2,  # with and without the signature
        ("127.0.0.1", "ext.test", "quarantine", "fail", "fail"): 1,
    }, ext
    root = by_domain["ext.test"]["roots"][-1]
    assert root.findtext("policy_published/p") == "quarantine"
    assert root.findtext("policy_published/adkim") == "s"
    sigs = [(e.findtext("domain"), e.findtext("selector"), e.findtext("result"))
            for e in root.iter("dkim") if e.find("domain") is not None]
    assert sigs == [("dkim.test", "rsa", "pass")], sigs


def test_dry_run_writes_and_sends_nothing(reporter, tmp_path):
    s = reporter
    assert send(s, "a@rep.test", "a@rep.test", "dry-1").code == 250
    out_dir = tmp_path / "dry"
    out_dir.mkdir()
    before = rows(s)
    report_all_days(s, "--dry-run", str(out_dir))
    files = sorted(os.listdir(out_dir))
    gz = [f for f in files if f.endswith(".xml.gz")]
    eml = [f for f in files if f.endswith(".eml")]
    assert len(gz) == len(rows_files(s)) and len(eml) == len(gz), files
    with open(out_dir / eml[0], "rb") as f:
        msg, name, xml = report_of(f.read())
    assert name == gz[0]
    with open(out_dir / gz[0], "rb") as f:
        assert gzip.decompress(f.read()) == xml
    assert rows(s) == before
    s.settle()
    assert s.maildir("dmarc", "rep.test") == []


def test_torn_and_hostile_lines_are_skipped(reporter):
    """The rows file is read as untrusted: a torn last line (a crash mid-write), garbage and an
    over-long line are counted and skipped; the good rows still make their report. The queue's
    next append starts on a line of its own."""
    s = reporter
    assert send(s, "a@rep.test", "a@rep.test", "torn-1").code == 250
    name = rows_files(s)[-1]
    path = os.path.join(s.spool, "dmarc", name)
    with open(path, "ab") as f:
        f.write(b"garbage\tline\n" + b"x" * 40000 + b"\n" + b"dmarc1\t123\t1.2.3")
    s.restart()  # as after the crash that tore the line: the queue opens the file again
    assert send(s, "a@rep.test", "a@rep.test", "torn-2").code == 250
    good = [l for l in rows(s) if l.startswith(b"dmarc1\t") and l.count(b"\t") > 10]
    assert len(good) == 2, rows(s)
    rc, out = dmarc_report(s, "--day", name[:10])
    assert rc == 0, out
    assert re.search(r"%s: 2 rows in 1 reports" % re.escape(name), out), out
    assert re.search(r"3 malformed lines skipped", out), out
    raw = s.wait_delivered("dmarc", 1, domain="rep.test", timeout=30)[0]
    _, _, xml = report_of(raw)
    assert records(ET.fromstring(xml)) == {("127.0.0.1", "rep.test", "none", "fail", "pass"): 2}


def test_old_rows_files_are_removed(reporter):
    s = reporter
    assert send(s, "a@rep.test", "a@rep.test", "old-1").code == 250
    d = os.path.join(s.spool, "dmarc")
    old = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 10 * 86400)) + ".rows"
    recent = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 3 * 86400)) + ".rows"
    for n in (old, recent, "notes.txt"):
        with open(os.path.join(d, n), "w") as f:
            f.write("")
    rc, out = dmarc_report(s)  # yesterday: no rows, still the clean-up
    assert rc == 0, out
    left = sorted(os.listdir(d))
    assert old not in left and recent in left and "notes.txt" in left, left
    assert "removed %s" % old in out, out


def test_usage_errors(reporter):
    s = reporter
    for args in (["--day", "2024-02-30"], ["--day", "yesterday"], ["--day", "2999-01-01"], ["--bogus"]):
        rc, out = dmarc_report(s, *args)
        assert rc == 64, (args, out)
