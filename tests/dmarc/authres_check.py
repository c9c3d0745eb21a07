#!/usr/bin/python3
"""Reads the Authentication-Results fields tern builds with python3-authres.

usage: authres_check.py RUNNER

RUNNER is tests/dmarc/dmarc_runner. Each fixture (SPF, DKIM, DMARC and ARC
results with their properties, hostile values among them) is built by
tern's authres_build() and parsed by authres.AuthenticationResultsHeader
(all of its features: dkim header.b, dmarc, arc); the authserv-id, and
each result's method, result and properties (type, name, value, in
order) must be what went in: header.b a prefix of the b= given, at least
8 characters long (or all of it); control characters as '?'. Every line
must end in CRLF and stay within 78 characters, 998 where a single value
is longer.

Not compared: comments (authres skips them); an authserv-id that is not
a token (authres 1.2 refuses a quoted one, which RFC 8601 allows; tern's
is a host name); a quoted value that is not the last property of its
result (authres 1.2 then drops the property without an error: its
_parse_pvalue() takes a quoted-string only before ';' or the end, where
RFC 8601's pvalue allows it anywhere), so the fixtures with values that
need quoting have one, last. The authserv-id compares without case
(authres lowers it; RFC 8601 §2.5), a quoted value after its
quoted-pairs are undone (authres keeps the '\\'). Exits 0 only if every
fixture holds.
"""
import re
import subprocess
import sys

from runnerio import esc, unesc  # noqa: F401

import authres
import authres.core

B1 = "dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgaXMgbG9uZw=="
B2 = "dGhpcyBpcyBub3QgYW5vdGhlcg=="

# (id, authserv-id, [entries]); an entry is a tuple as the runner's lines.
FIXTURES = [
    ("plain", "mx.tern.example", [
        ("spf", "pass", "mailfrom", "bounce@example.com", "example.com: matched a"),
        ("spf", "none", "helo", "mx.example.com", None),
        ("dkim", "pass", "example.com", "@example.com", "sel1", "rsa-sha256", B1, None),
        ("dkim", "fail", "example.net", None, "s2", "ed25519-sha256", B2, "body hash"),
        ("dmarc", "pass", "example.com", "none", "p=reject"),
        ("arc", "pass", "192.0.2.1", "1", None),
    ]),
    ("no-result", "mx.tern.example", []),
    ("dmarc-fail", "Mx.Tern.Example", [
        ("spf", "softfail", "mailfrom", "x@evil.example", None),
        ("dmarc", "fail", "bank.example", "reject", "p=reject sp=reject"),
    ]),
    ("dmarc-no-policy", "mx", [("dmarc", "none", "example.org", None, None)]),
    ("permerror", "mx", [
        ("spf", "permerror", "mailfrom", "a@b.example", "too many lookups"),
        ("dkim", "permerror", None, None, None, None, None, "no signature"),
        ("dmarc", "permerror", None, "reject", "malformed From"),
        ("arc", "none", None, None, None),
    ]),
    # Quoted values, each the last property of its result (see above).
    ("hostile-spf", "mx.tern.example", [
        ("spf", "fail", "mailfrom", "x@evil.example;dkim=pass", "a (b) \\ c\r\nX-Evil: 1"),
    ]),
    ("hostile-dkim", "mx.tern.example", [
        ("dkim", "fail", "evil.example", None, "s;1\r\nX-Injected: yes", None, None, None),
        ("dkim", "fail", None, "a\"b@evil.example", None, None, None, None),
    ]),
    ("hostile-dmarc", "mx.tern.example", [
        ("dmarc", "fail", "evil.example) x", None, ")(("),
    ]),
    ("long", "mx.tern.example", [
        ("dkim", "pass", "d" * 60 + ".example", "user." + "i" * 50 + "@" + "d" * 60 + ".example",
         "s" * 63, "rsa-sha256", B1 * 3, "r " * 80),
    ]),
]






def clean(value):
    return "".join("?" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in value)


def expected(entries):
    """[(method, result, [(type, name, value)])] and the b= values given."""
    out = []
    for e in entries:
        m, r = e[0], e[1]
        props = []
        if m == "spf":
            if e[3] is not None:
                props.append(("smtp", e[2], e[3]))
        elif m == "dkim":
            for name, v in zip(("d", "i", "s", "a", "b"), e[2:7]):
                if v is not None:
                    props.append(("header", name, v))
        elif m == "dmarc":
            if e[2] is not None:
                props.append(("header", "from", e[2]))
            if e[3] is not None:
                props.append(("policy", "dmarc", e[3]))
        elif m == "arc":
            if e[2] is not None:
                props.append(("smtp", "remote-ip", e[2]))
            if e[3] is not None:
                props.append(("header", "oldest-pass", e[3]))
        out.append((m, r, [(t, n, clean(v)) for t, n, v in props]))
    return out


def check_lines(field):
    problems = []
    assert field.endswith("\r\n")
    lines = field[:-2].split("\r\n")
    for i, line in enumerate(lines):
        if "\r" in line or "\n" in line:
            problems.append("bare CR or LF in line %d" % i)
        if i and not line.startswith("\t"):
            problems.append("line %d is no continuation" % i)
        longest_word = max((len(w) for w in line.split()), default=0)
        limit = 78 if longest_word < 70 else 998
        if len(line) > limit:
            problems.append("line %d has %d characters" % (i, len(line)))
    return problems


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    lines = []
    for fid, aid, entries in FIXTURES:
        lines.append("ar " + esc(aid))
        for e in entries:
            lines.append(" ".join([e[0], e[1]] + [esc(v) for v in e[2:]]))
        lines.append("build " + fid)
    out = subprocess.run([sys.argv[1]], input="\n".join(lines) + "\n", capture_output=True,
                         text=True)
    if out.returncode != 0:
        sys.exit("runner failed: %s" % out.stderr)
    built = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    passed = failed = 0
    for fid, aid, entries in FIXTURES:
        field = unesc(built[fid])
        problems = check_lines(field)
        try:
            h = authres.core.AuthenticationResultsHeader.parse(authres.all_features(), field)
        except Exception as e:  # noqa: BLE001 - any parse failure is the finding
            problems.append("authres cannot parse it: %s" % e)
            h = None
        if h is not None:
            if h.authserv_id.lower() != aid.lower():
                problems.append("authserv-id %r" % h.authserv_id)
            want = expected(entries)
            got = [(r.method, r.result, [(p.type, p.name, p.value) for p in r.properties])
                   for r in h.results]
            if len(got) != len(want):
                problems.append("%d results, want %d" % (len(got), len(want)))
            for (gm, gr, gp), (wm, wr, wp) in zip(got, want):
                if (gm, gr) != (wm, wr):
                    problems.append("result %s=%s, want %s=%s" % (gm, gr, wm, wr))
                if len(gp) != len(wp):
                    problems.append("%s properties %s, want %s" % (gm, gp, wp))
                for g, w in zip(gp, wp):
                    if g[:2] != w[:2]:
                        problems.append("property %s.%s, want %s.%s" % (g[0], g[1], w[0], w[1]))
                    elif g[1] == "b" and g[0] == "header":
                        if not w[2].startswith(g[2]) or len(g[2]) < min(8, len(w[2])):
                            problems.append("header.b %r is no prefix of %r" % (g[2], w[2]))
                    elif re.sub(r"\\(.)", r"\1", g[2]) != w[2]:
                        problems.append("%s.%s=%r, want %r" % (g[0], g[1], g[2], w[2]))
        if problems:
            failed += 1
            print("FAIL %s:\n  %s\n%s" % (fid, "\n  ".join(problems), field))
        else:
            passed += 1
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
