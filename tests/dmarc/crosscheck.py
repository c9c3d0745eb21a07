#!/usr/bin/python3
"""Cross-checks tern's DMARC evaluator against python3-authheaders.

usage: crosscheck.py RUNNER

RUNNER is tests/dmarc/dmarc_runner. Each fixture (From field, SPF result
of MAIL FROM, DKIM results, DMARC records in DNS) runs through tern's
evaluator and through authheaders.check_dmarc() on a message with that
From field, with authheaders' DNS lookups answered from the same records
(its resolver call, authheaders.dmarc_lookup.query, is replaced: no
network) and its Public Suffix List the same Debian file tern's libpsl
reads. The DMARC result (pass, fail, none) and the policy asked for (p
or sp, before pct: authheaders does not apply pct) must agree.

authheaders takes one DKIM result: a message with several signatures is
checked once per signature, and passes when one of them passes.

DISAGREE lists the fixtures where the two legitimately differ, each with
the reason; they must still differ as stated (so the list stays true).
Cases of DNS failure (temperror) are not cross-checked: authheaders has
no temperror (a timeout raises). Exits 0 only if every case holds.
"""
import os
import subprocess
import sys

from runnerio import esc, unesc  # noqa: F401

import authheaders
import authheaders.dmarc_lookup as dmarc_lookup
from authres import DKIMAuthenticationResult, SPFAuthenticationResult
from dns.resolver import NXDOMAIN

ZONE = {
    "_dmarc.example.com": ["v=DMARC1; p=reject"],
    "_dmarc.spsub.org": ["v=DMARC1; p=reject; sp=quarantine"],
    "_dmarc.quar.example": ["v=DMARC1; p=quarantine; rua=mailto:r@quar.example"],
    "_dmarc.none.example": ["v=DMARC1; p=none"],
    "_dmarc.strict.example": ["v=DMARC1; p=reject; adkim=s; aspf=s"],
    "_dmarc.sspf.example": ["v=DMARC1; p=reject; aspf=s"],
    "_dmarc.sdkim.example": ["v=DMARC1; p=reject; adkim=s"],
    "_dmarc.pct.example": ["v=DMARC1; p=reject; pct=0"],
    "_dmarc.twice.example": ["v=DMARC1; p=reject", "v=DMARC1; p=none"],
    "_dmarc.mixed.example": ["v=spf1 -all", "v=DMARC1; p=quarantine", "hello"],
    "_dmarc.spaced.example": ["v=DMARC1;p=reject;"],
    "_dmarc.sub.own.example": ["v=DMARC1; p=quarantine"],
    "_dmarc.own.example": ["v=DMARC1; p=none; sp=reject"],
    "_dmarc.example.co.uk": ["v=DMARC1; p=reject"],
    "_dmarc.blogspot.com": ["v=DMARC1; p=reject"],
    "_dmarc.sp.example": ["v=DMARC1; p=none; sp=reject"],
    "_dmarc.badp.example": ["v=DMARC1; p=bogus; rua=mailto:r@badp.example"],
    "_dmarc.nop.example": ["v=DMARC1; rua=mailto:r@nop.example"],
    "_dmarc.lower.example": ["v=dmarc1; p=reject"],
    "_dmarc.ten.example": ["v=DMARC10; p=reject"],
    "_dmarc.wsp.example": ["v = DMARC1; p=reject"],
    "_dmarc.dup.example": ["v=DMARC1; p=none; p=reject"],
    "_dmarc.psd.example": [],
}

# id: (From field, MAIL FROM, HELO, SPF result, [(DKIM result, d)])
CASES = {
    "spf-relaxed-pass": ("a@example.com", "b@bounce.example.com", "h", "pass", []),
    "spf-relaxed-fail-other-org": ("a@example.com", "b@example.net", "h", "pass", []),
    "spf-softfail": ("a@example.com", "b@example.com", "h", "softfail", []),
    "spf-neutral": ("a@example.com", "b@example.com", "h", "neutral", []),
    "spf-null-path-helo": ("a@example.com", "", "mail.example.com", "pass", []),
    "dkim-relaxed-pass": ("a@example.com", "b@example.net", "h", "fail",
                          [("pass", "mail.example.com")]),
    "dkim-fail": ("a@example.com", "b@example.net", "h", "fail", [("fail", "example.com")]),
    "dkim-unaligned-pass": ("a@example.com", "b@example.net", "h", "fail",
                            [("pass", "example.net")]),
    "dkim-several-one-aligned": ("a@example.com", "b@example.net", "h", "fail",
                                 [("pass", "example.net"), ("fail", "example.com"),
                                  ("pass", "example.com")]),
    "dkim-several-none-aligned": ("a@example.com", "b@example.net", "h", "fail",
                                  [("pass", "example.net"), ("fail", "example.com")]),
    "subdomain-sp": ("a@news.spsub.org", "b@example.net", "h", "fail", []),
    "subdomain-sp-pass": ("a@news.spsub.org", "b@spsub.org", "h", "pass", []),
    "subdomain-p-without-sp": ("a@news.example.com", "b@example.net", "h", "fail", []),
    "record-at-subdomain": ("a@sub.own.example", "b@x.example", "h", "fail", []),
    "quarantine": ("a@quar.example", "b@quar.example", "h", "fail", []),
    "p-none-fail": ("a@none.example", "b@x.example", "h", "fail", []),
    "strict-spf-sub": ("a@strict.example", "b@mail.strict.example", "h", "pass", []),
    "strict-spf-exact": ("a@strict.example", "b@strict.example", "h", "pass", []),
    "strict-dkim-sub": ("a@strict.example", "b@x.example", "h", "fail",
                        [("pass", "mail.strict.example")]),
    "strict-dkim-exact": ("a@strict.example", "b@x.example", "h", "fail",
                          [("pass", "strict.example")]),
    "aspf-s-adkim-r": ("a@sspf.example", "b@mail.sspf.example", "h", "pass",
                       [("pass", "mail.sspf.example")]),
    "adkim-s-aspf-r": ("a@sdkim.example", "b@mail.sdkim.example", "h", "pass",
                       [("pass", "mail.sdkim.example")]),
    "pct-zero-policy-asked": ("a@pct.example", "b@x.example", "h", "fail", []),
    "no-record": ("a@norecord.example", "b@norecord.example", "h", "pass", []),
    "two-records": ("a@twice.example", "b@x.example", "h", "fail", []),
    "non-dmarc-txt-ignored": ("a@mixed.example", "b@x.example", "h", "fail", []),
    "no-spaces": ("a@spaced.example", "b@x.example", "h", "fail", []),
    "public-suffix-org": ("a@news.example.co.uk", "b@other.co.uk", "h", "pass", []),
    "public-suffix-org-pass": ("a@news.example.co.uk", "b@example.co.uk", "h", "pass", []),
    "private-suffix": ("a@x.blogspot.com", "b@y.blogspot.com", "h", "pass", []),
    "display-name": ("\"Example, Inc\" <a@example.com>", "b@example.net", "h", "fail", []),
    "comment": ("a@example.com (Example)", "b@example.net", "h", "fail", []),
    "case": ("a@EXAMPLE.COM", "b@Example.Com", "h", "pass", []),
    "two-from-both-fail": ("a@quar.example, b@example.com", "b@x.example", "h", "fail", []),
    "uppercase-v": ("a@lower.example", "b@x.example", "h", "fail", []),
}

# The fixtures where tern and authheaders differ, with why tern is right.
DISAGREE = {
    "own-record-sp": (
        ("a@sp.example", "b@x.example", "h", "fail", []),
        "authheaders applies sp to a record found at the From domain itself (its "
        "dmarc_per_from sets orgdomain in both cases); RFC 7489 §6.3: sp is for "
        "subdomains whose policy comes from the Organizational Domain's record, so tern "
        "applies p=none"),
    "invalid-p-with-rua": (
        ("a@badp.example", "b@x.example", "h", "fail", []),
        "RFC 7489 §6.6.3 step 6: an invalid p with a valid rua reads as p=none; "
        "authheaders passes 'bogus' on as the policy"),
    "missing-p-with-rua": (
        ("a@nop.example", "b@x.example", "h", "fail", []),
        "the same rule for a missing p: tern fail/none, authheaders no DMARC"),
    "dmarc10": (
        ("a@ten.example", "b@x.example", "h", "fail", []),
        "'v=DMARC10' is no DMARC1 record (§6.4: dmarc-sep must follow); authheaders "
        "matches the first 9 characters only"),
    "wsp-around-equals": (
        ("a@wsp.example", "b@x.example", "h", "fail", []),
        "§6.4 allows WSP around '=' in v=DMARC1; authheaders wants 'v=DMARC1' exactly"),
    "duplicate-p": (
        ("a@dup.example", "b@x.example", "h", "fail", []),
        "tern takes the first of a repeated tag (none), authheaders the last (reject)"),
    "hyphenated-domain": (
        ("a@my-example.com", "b@my-example.com", "h", "pass", []),
        "authheaders' get_domain_part() stops at '-' (regex [a-z0-9.]+) and looks up "
        "_dmarc.my; tern looks up _dmarc.my-example.com"),
    "two-from-pass-and-fail": (
        ("a@example.com, b@quar.example", "b@x.example", "h", "fail",
         [("pass", "example.com")]),
        "§6.6.1: the strictest policy among the checks that fail; authheaders returns the "
        "first domain whose policy is reject even though it passed, tern the failing "
        "quar.example"),
    "unlisted-tld": (
        ("a@news.spsub.example", "b@example.net", "h", "fail", []),
        "for a name under a TLD the list does not have, libpsl applies the list's implicit "
        "'*' rule (Organizational Domain spsub.example, whose record has sp=quarantine); "
        "publicsuffix2 in authheaders takes the bare TLD 'example' and finds no record"),
    "two-from-spf-pass": (
        ("a@example.com, b@quar.example", "b@example.com", "h", "pass", []),
        "authheaders raises IndexError: after the first From domain it has overwritten "
        "the SPF result's smtp_mailfrom with a bare domain, which its get_domain_part() "
        "cannot read; tern: example.com passes, quar.example fails, fail/quarantine"),
}

ZONE["_dmarc.my-example.com"] = ["v=DMARC1; p=reject"]
ZONE["_dmarc.spsub.example"] = ["v=DMARC1; p=reject; sp=quarantine"]


class Txt:
    def __init__(self, text):
        self.text = text

    def __str__(self):
        return '"%s"' % self.text


def fake_query(name, qtype="TXT"):
    recs = ZONE.get(name.lower().rstrip("."))
    if not recs:
        raise NXDOMAIN()
    return [Txt(t) for t in recs]


dmarc_lookup.query = fake_query




def theirs(case):
    frm, mf, helo, spf, dkim = case
    msg = ("From: %s\r\nSubject: x\r\n\r\nbody\r\n" % frm).encode()
    spf_res = SPFAuthenticationResult(result=spf, smtp_mailfrom=mf or "postmaster@" + helo)
    results = []
    for d in dkim or [None]:
        dk = DKIMAuthenticationResult(result=d[0], header_d=d[1]) if d else None
        spf_copy = SPFAuthenticationResult(result=spf_res.result,
                                           smtp_mailfrom=spf_res.smtp_mailfrom)
        try:
            results.append(authheaders.check_dmarc(msg, spf_copy, dk))
        except Exception as e:  # noqa: BLE001 - a crash is a result here
            return "raised", type(e).__name__
    best = next((r for r in results if r.result == "pass"), results[0])
    return best.result, getattr(best, "policy", None) or "-"


def ours(runner, cases):
    lines = ["zone %s TXT %s" % (esc(n), esc(t)) for n, ts in ZONE.items() for t in ts]
    for cid, (frm, mf, helo, spf, dkim) in cases.items():
        f = ["case", cid, "192.0.2.1", esc(mf), esc(helo), esc(frm), spf, "0"]
        for r, d in dkim:
            f += [r, esc(d), "-"]
        lines.append(" ".join(f))
    out = subprocess.run([runner], input="\n".join(lines) + "\n", capture_output=True,
                         text=True)
    if out.returncode != 0:
        sys.exit("runner failed: %s" % out.stderr)
    got = {}
    for line in out.stdout.splitlines():
        cid, result, policy = line.split()[:3]
        got[cid] = (result, policy if result != "none" else "-")
    return got


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    allcases = dict(CASES)
    allcases.update({k: v[0] for k, v in DISAGREE.items()})
    tern = ours(sys.argv[1], allcases)
    passed = failed = 0
    for cid, case in allcases.items():
        them = theirs(case)
        if them[0] == "none":
            them = ("none", "-")
        agree = tern[cid] == them
        if (cid in DISAGREE) == agree:
            failed += 1
            print("FAIL %s: tern %s, authheaders %s%s" % (
                cid, tern[cid], them, " (listed as a disagreement)" if cid in DISAGREE else ""))
        else:
            passed += 1
            if cid in DISAGREE:
                print("differs as listed, %s: tern %s, authheaders %s: %s" % (
                    cid, tern[cid], them, DISAGREE[cid][1]))
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
