"""ARC (RFC 8617) against an independent implementation: dkimpy (Debian's
python3-dkim: dkim.arc_sign, dkim.arc_verify with its dnsfunc hook, and the
arcsign command), with tern's mailauth/arc_* behind tests/dkim/dkim_tool.

- Chains dkimpy makes (1, 2 and 3 sets, each hop its own domain) pass in
  tern as in dkimpy; tampered (the body, a seal's signature, a set
  removed, a seal's cv=, a first hop's AAR) they fail in both; a chain
  dkimpy seals as failed (cv=fail) fails in both, and tern will not seal
  on top of it.
- Chains tern seals (1 to 3 sets, streamed or after DKIM signing) pass
  dkimpy's arc_verify and fail there once tampered; tern seals on top of
  dkimpy's chains and dkimpy on top of tern's, both ways passing; tern's
  cv=fail seal over a broken chain is read by dkimpy as the end of the
  chain.
- dkimpy 1.1 validates rsa-sha256 seals only: tern's Ed25519 seals pass
  in tern and are refused by dkimpy (recorded, so a change shows).

Keys come from dkimpy's dknewkey and reach every validator from files: no
DNS, nothing leaves the machine.
"""

import os
import re
import subprocess
import time

import dkim
import pytest
from conftest import TOOL, crlf, records_file

MSG = crlf(
    "From: Alice <alice@example.org>\n"
    "To: list@lists.example.net\n"
    "Subject: forwarded along\n"
    "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
    "Message-ID: <arc-1@example.org>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain;\n charset=us-ascii\n"
    "\n"
    "Hello  list,\n"
    "\n"
    "a message that goes through three forwarders.\n"
)

HOPS = ["hop%d.example" % i for i in range(4)]
T = 1700000000


@pytest.fixture(scope="module")
def arckeys(work, keys):
    """The RSA key under selector "arc" of every hop, and the Ed25519 one
    under "ed": {qname: record}, as a dkim_tool key file and a dnsfunc."""
    recs = {}
    for d in HOPS:
        recs["arc._domainkey." + d] = keys["rsa"][1]
        recs["ed._domainkey." + d] = keys["ed"][1]
    path = records_file(work, recs, "arc-keys.txt")

    def dnsfunc(name, timeout=5):
        return recs.get(name.decode().rstrip("."), "").encode() or None

    return path, dnsfunc


def rsa_pem(keys):
    with open(keys["rsa"][0], "rb") as f:
        return f.read()


def py_seal(msg, keys, hop, arc):
    """dkimpy seals msg as hop `hop`: it reads the chain's state from the
    Authentication-Results of its authserv-id, put here with arc=<arc>."""
    d = HOPS[hop]
    msg = ("Authentication-Results: %s; spf=pass smtp.mailfrom=example.org; arc=%s\r\n"
           % (d, arc)).encode() + msg
    sets = dkim.arc_sign(msg, b"arc", d.encode(), rsa_pem(keys), d.encode(), timestamp=str(T))
    assert sets, "dkimpy made no set"
    return b"".join(sets) + msg


def py_chain(keys, n):
    m = MSG
    for hop in range(n):
        m = py_seal(m, keys, hop, "pass" if hop else "none")
    return m


def py_verify(msg, dnsfunc):
    cv, _, reason = dkim.arc_verify(msg, dnsfunc=dnsfunc)
    return cv, reason


def tern_verify(msg, keyfile, chunk=7, now=T + 60):
    p = subprocess.run([TOOL, "arc-verify", "--now", str(now), "--chunk", str(chunk),
                        keyfile], input=msg, capture_output=True, check=True)
    first, aar = p.stdout.decode().splitlines()
    result, rest = first.split(" ", 1)
    head, reason = rest.split(" reason=", 1)
    fields = dict(kv.split("=", 1) for kv in head.split(" "))
    fields["reason"] = reason
    fields["aar"] = aar[len("aar="):]
    return result, fields


def tern_seal(msg, hop, cv, sel="arc", keys=None, pem=None, dkim_first=False):
    d = HOPS[hop]
    args = [TOOL, "arc-seal", "--t", str(T), "--cv", cv]
    if dkim_first:
        args += ["--dkim", pem, d, sel]
    args += [pem, d, sel, "%s; spf=pass smtp.mailfrom=example.org; arc=%s" % (d, cv)]
    return subprocess.run(args, input=msg, capture_output=True)


def tern_sealed(msg, hop, cv, pem, sel="arc", dkim_first=False):
    p = tern_seal(msg, hop, cv, sel=sel, pem=pem, dkim_first=dkim_first)
    assert p.returncode == 0, p.stderr
    return p.stdout


def tamper_body(msg):
    return msg.replace(b"three forwarders", b"four forwarders", 1)


def field(msg, prefix):
    """The field of msg that starts with prefix, folds and CRLF included."""
    m = re.search(re.escape(prefix) + rb".*?\r\n(?![ \t])", msg, re.S)
    assert m, prefix
    return m.group(0)


def remove_set(msg, i):
    for name in (b"ARC-Seal", b"ARC-Message-Signature", b"ARC-Authentication-Results"):
        msg = msg.replace(field(msg, name + b": i=%d;" % i), b"", 1)
    return msg


# ---- dkimpy seals, tern validates ----

@pytest.mark.parametrize("n", [1, 2, 3])
def test_dkimpy_chain_passes_in_tern(keys, arckeys, n):
    keyfile, dnsfunc = arckeys
    m = py_chain(keys, n)
    assert py_verify(m, dnsfunc)[0] == b"pass"
    result, f = tern_verify(m, keyfile)
    assert result == "pass", f
    assert f["sets"] == str(n) and f["oldest-pass"] == "0", f
    assert f["as-d"] == HOPS[n - 1] and f["aar-id"] == HOPS[n - 1]
    assert "arc=%s" % ("pass" if n > 1 else "none") in f["aar"]
    assert tern_verify(m, keyfile, chunk=1)[0] == "pass"


def test_arcsign_command_passes_in_tern(keys, arckeys, work):
    """The arcsign command as Debian ships it (cv from the message: pass
    when it has an ARC-Seal already)."""
    keyfile, dnsfunc = arckeys
    one = py_chain(keys, 1)
    msg = b"Authentication-Results: hop1.example; arc=pass\r\n" + one
    p = subprocess.run(["arcsign", "arc", "hop1.example", keys["rsa"][0], "hop1.example"],
                       input=msg, capture_output=True, check=True)
    out = p.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert out.startswith(b"ARC-Seal: i=2;")
    assert py_verify(out, dnsfunc)[0] == b"pass"
    # arcsign stamps the time now: an AMS t= past the clock skew fails,
    # as in DKIM.
    assert tern_verify(out, keyfile, now=int(time.time()))[0] == "pass"
    result, f = tern_verify(out, keyfile)
    assert (result, f["reason"]) == ("fail",
                                     "i=2 ARC-Message-Signature: signature time in the future")


def seal_b_flipped(msg, i):
    f = field(msg, b"ARC-Seal: i=%d;" % i)
    at = f.index(b" b=") + 3
    g = f[:at] + (b"B" if f[at:at + 1] != b"B" else b"C") + f[at + 1:]
    return msg.replace(f, g, 1)


TAMPERS = {
    "body": (tamper_body, "i=3 ARC-Message-Signature: body hash mismatch"),
    "seal": (lambda m: seal_b_flipped(m, 1), "i=3 ARC-Seal: signature mismatch"),
    "set removed": (lambda m: remove_set(m, 2), "ARC instances with a gap"),
    "cv changed": (lambda m: m.replace(b"i=2; cv=pass;", b"i=2; cv=none;", 1),
                   "i=2 ARC-Seal: cv=none after i=1"),
    "first AAR": (lambda m: m.replace(b"i=1; hop0.example;", b"i=1; hop9.example;", 1),
                  "i=3 ARC-Seal: signature mismatch"),
}


@pytest.mark.parametrize("how", sorted(TAMPERS))
def test_dkimpy_chain_tampered_fails_in_both(keys, arckeys, how):
    keyfile, dnsfunc = arckeys
    change, reason = TAMPERS[how]
    m = py_chain(keys, 3)
    bad = change(m)
    assert bad != m
    assert py_verify(bad, dnsfunc)[0] != b"pass"
    result, f = tern_verify(bad, keyfile)
    assert (result, f["reason"]) == ("fail", reason)


def test_dkimpy_cv_fail_chain(keys, arckeys, work):
    """A hop that found the chain broken seals it with cv=fail (§5.1.2):
    both validators fail it, and tern adds no seal on top (§5.1 step 1)."""
    keyfile, dnsfunc = arckeys
    m = tamper_body(py_chain(keys, 2))
    assert py_verify(m, dnsfunc)[0] == b"fail"
    failed = py_seal(m, keys, 2, "fail")
    assert b"cv=fail" in field(failed, b"ARC-Seal: i=3;")
    assert py_verify(failed, dnsfunc)[0] != b"pass"
    result, f = tern_verify(failed, keyfile)
    assert (result, f["reason"]) == ("fail", "the newest ARC-Seal says cv=fail")
    p = tern_seal(failed, 3, "fail", pem=keys["rsa"][0])
    assert p.returncode == 3 and p.stdout == failed


# ---- tern seals, dkimpy validates ----

@pytest.mark.parametrize("n", [1, 2, 3])
def test_tern_chain_passes_in_dkimpy(keys, arckeys, n):
    keyfile, dnsfunc = arckeys
    m = MSG
    for hop in range(n):
        m = tern_sealed(m, hop, "pass" if hop else "none", keys["rsa"][0])
    assert py_verify(m, dnsfunc) == (b"pass", "success")
    assert tern_verify(m, keyfile)[0] == "pass"
    assert py_verify(tamper_body(m), dnsfunc)[0] == b"fail"
    if n > 1:
        assert py_verify(seal_b_flipped(m, 1), dnsfunc)[0] == b"fail"
        assert py_verify(remove_set(m, 1), dnsfunc)[0] == b"fail"


def test_tern_seals_after_dkim_signing(keys, arckeys):
    """DKIM-signed first, then sealed with the signer's header and body
    hash (arc_seal_header): dkimpy verifies both."""
    keyfile, dnsfunc = arckeys
    m = tern_sealed(MSG, 0, "none", keys["rsa"][0], dkim_first=True)
    assert m.index(b"ARC-Seal:") < m.index(b"DKIM-Signature:") < m.index(b"From:")
    assert py_verify(m, dnsfunc)[0] == b"pass"
    assert dkim.verify(m, dnsfunc=dnsfunc)
    assert b"dkim-signature" in field(m, b"ARC-Message-Signature:").lower()
    # The DKIM signature is under the AMS: changing it breaks the chain.
    bad = m.replace(b"DKIM-Signature: v=1;", b"DKIM-Signature: v=1; x=1;", 1)
    assert py_verify(bad, dnsfunc)[0] == b"fail"
    assert tern_verify(bad, keyfile)[1]["reason"] == \
        "i=1 ARC-Message-Signature: signature mismatch"


def test_tern_on_dkimpy_and_back(keys, arckeys):
    keyfile, dnsfunc = arckeys
    m = tern_sealed(py_chain(keys, 2), 2, "pass", keys["rsa"][0])
    assert py_verify(m, dnsfunc)[0] == b"pass"
    assert tern_verify(m, keyfile)[1]["sets"] == "3"
    m = py_seal(m, keys, 3, "pass")
    assert py_verify(m, dnsfunc)[0] == b"pass"
    result, f = tern_verify(m, keyfile)
    assert (result, f["sets"], f["oldest-pass"]) == ("pass", "4", "0")


def test_tern_cv_fail_seal_read_by_dkimpy(keys, arckeys):
    """tern seals a broken dkimpy chain with cv=fail: the new set alone is
    signed; dkimpy says the chain has ended, tern fails it."""
    keyfile, dnsfunc = arckeys
    m = tamper_body(py_chain(keys, 2))
    assert tern_verify(m, keyfile)[0] == "fail"
    failed = tern_sealed(m, 2, "fail", keys["rsa"][0])
    assert b"cv=fail" in field(failed, b"ARC-Seal: i=3;")
    cv, reason = py_verify(failed, dnsfunc)
    assert cv is None and "reported failure" in reason, (cv, reason)
    assert tern_verify(failed, keyfile)[1]["reason"] == "the newest ARC-Seal says cv=fail"


def test_tern_ed25519_seal(keys, arckeys):
    """RFC 8617 takes DKIM's algorithms; dkimpy 1.1 knows rsa-sha256 only."""
    keyfile, dnsfunc = arckeys
    pem = keys["ed"][0]
    m = tern_sealed(MSG, 0, "none", pem, sel="ed")
    assert b"a=ed25519-sha256" in m
    assert tern_verify(m, keyfile)[0] == "pass"
    cv, reason = py_verify(m, dnsfunc)
    assert cv == b"fail" and "unknown signature algorithm" in reason
