#!/usr/bin/python3
"""Runs the OpenSPF RFC 7208 test suite against tern's SPF evaluator.

usage: run_suite.py RUNNER [SUITE]

RUNNER is the spf_suite_runner binary (tests/spf/spf_suite_runner.c);
SUITE the YAML suite, by default the one Debian's python3-spf ships,
/usr/share/doc/python3-spf/rfc7208-tests.yml.gz. Each scenario's zone data
is converted to the runner's line format with the conventions of the
suite's own driver (testspf.py): SPF-type records stand in for TXT records
where a name has no TXT entry, "TXT: NONE" means the name has no TXT
record, TIMEOUT makes every type not listed before it time out, and names
under "error." time out. Every test case must give one of its allowed
results, and its explanation where the case gives one (DEFAULT when a fail
has no exp). Exits 0 only if all pass; prints the counts either way.
"""
import gzip
import subprocess
import sys

import yaml

DEFAULT_SUITE = "/usr/share/doc/python3-spf/rfc7208-tests.yml.gz"
TYPES = ("TXT", "A", "AAAA", "MX", "PTR")

# Cases not run, with the reason. The goal is none; every entry must be
# reported.
SKIPS = {}


def esc(value):
    """One field of the runner's format: bytes, or str as UTF-8."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, int):
        value = str(value).encode()
    if not value:
        return '""'
    out = []
    for b in value:
        if 0x20 < b < 0x7F and b not in (0x5C, 0x22):
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def unesc(field):
    if field == '""':
        return ""
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i] == "\\":
            out.append(int(field[i + 2:i + 4], 16))
            i += 4
        else:
            out.append(ord(field[i]))
            i += 1
    return out.decode("utf-8", "replace")


def zone_entries(name, entries):
    """The entries of one name in the order the suite's driver returns
    them: SPF records become TXT records at the end unless the name has a
    TXT entry; "NONE" values are no records."""
    has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
    out, generated = [], []
    for e in entries:
        if not isinstance(e, dict):
            out.append(e)  # "TIMEOUT"
            continue
        for rtype, value in e.items():
            if rtype in ("TXT", "SPF") and isinstance(value, str):
                value = [value]
            if rtype == "SPF":
                if not has_txt and value != ["NONE"]:
                    generated.append(("TXT", value))
                continue
            if value == ["NONE"]:
                continue
            out.append((rtype, value))
    return out + generated


def zone_lines(zonedata):
    lines = []
    for name, entries in zonedata.items():
        ents = zone_entries(name, entries or [])
        n = esc(name)
        lines.append("zone %s NONE" % n)
        seen = set()
        timeout = False
        for e in ents:
            if e == "TIMEOUT":
                timeout = True
                break  # nothing after a TIMEOUT is ever returned
            rtype, value = e
            if value == "TIMEOUT":
                lines.append("zone %s TIMEOUT %s" % (n, rtype))
                continue
            seen.add(rtype)
            if rtype == "TXT":
                lines.append(" ".join(["zone", n, "TXT"] + [esc(s) for s in value]))
            elif rtype == "MX":
                lines.append("zone %s MX %s %s" % (n, esc(value[0]), esc(value[1])))
            elif rtype in ("A", "AAAA", "PTR", "CNAME"):
                lines.append("zone %s %s %s" % (n, rtype, esc(value)))
            else:
                raise ValueError("%s: record type %s" % (name, rtype))
        if timeout:
            for t in TYPES:
                if t not in seen:
                    lines.append("zone %s TIMEOUT %s" % (n, t))
    return lines


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    runner = sys.argv[1]
    path = sys.argv[2] if len(sys.argv) == 3 else DEFAULT_SUITE
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        scenarios = [s for s in yaml.safe_load_all(f) if s]

    lines, cases = [], {}
    for s in scenarios:
        lines += zone_lines(s.get("zonedata") or {})
        for tid, t in s["tests"].items():
            if tid in SKIPS:
                continue
            if tid in cases:
                raise ValueError("duplicate test id " + tid)
            cases[tid] = (s.get("description", "?"), t)
            lines.append("test %s %s %s %s" % (esc(tid), esc(t["host"]), esc(t["helo"]),
                                                esc(t.get("mailfrom", ""))))
        lines.append("end")

    proc = subprocess.run([runner], input="\n".join(lines) + "\n", capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        print("runner exited %d" % proc.returncode)
        return 1
    got = {}
    for line in proc.stdout.splitlines():
        tid, result, exp, reason, lookups = line.split(" ")
        got[unesc(tid)] = (result, unesc(exp), unesc(reason), int(lookups))

    failed = []
    for tid, (scenario, t) in cases.items():
        want = t["result"] if isinstance(t["result"], list) else [t["result"]]
        if tid not in got:
            failed.append("%s (%s): no result" % (tid, scenario))
            continue
        result, exp, reason, lookups = got[tid]
        problems = []
        if result not in want:
            problems.append("result %s, want %s" % (result, "/".join(want)))
        if "explanation" in t and exp != t["explanation"]:
            problems.append("explanation %r, want %r" % (exp, t["explanation"]))
        if problems:
            failed.append("%s (%s): %s [%s; %d lookups]" % (tid, scenario, "; ".join(problems),
                                                           reason, lookups))

    for f in failed:
        print("FAIL " + f)
    for tid, why in SKIPS.items():
        print("SKIP %s: %s" % (tid, why))
    print("%s: %d scenarios, %d cases, %d passed, %d failed, %d skipped"
          % (path, len(scenarios), len(cases), len(cases) - len(failed), len(failed),
             len(SKIPS)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
