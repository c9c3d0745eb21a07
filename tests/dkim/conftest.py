"""What the cross-checks of tests/dkim share: the tool, a private work
directory, keys made by dkimpy's dknewkey, and key files in dkim_tool's
format (fixtures: work, keys; helpers: crlf, records_file).

DKIM_TOOL names the dkim_tool binary (CTest sets it); DKIM_TMP a private
directory to work in (OpenDKIM refuses files under a directory others can
write to, such as /tmp)."""

import base64
import os
import shutil
import subprocess
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOOL = os.environ.get("DKIM_TOOL") or os.path.join(ROOT, "build", "dkim_tool")
DOMAIN = "example.org"


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


@pytest.fixture(scope="module")
def work():
    base = os.environ.get("DKIM_TMP") or os.path.join(os.path.expanduser("~"), ".cache")
    os.makedirs(base, exist_ok=True)
    d = tempfile.mkdtemp(prefix="tern-dkim.", dir=base)
    os.chmod(d, 0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# PKCS #8 for Ed25519 (RFC 8410 §7): this prefix and the 32-octet seed.
ED25519_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")


@pytest.fixture(scope="module")
def keys(work):
    """An RSA-2048 and an Ed25519 key from dkimpy's dknewkey, and their
    records: {"rsa": (pem path, record, dkimpy's key file), "ed": (...)}.
    dknewkey writes an Ed25519 key as its bare seed in base64; OpenDKIM and
    tern read PKCS #8 PEM, made here from the same seed."""
    out = {}
    for sel, ktype in (("rsa", "rsa"), ("ed", "ed25519")):
        subprocess.run(["dknewkey", "--ktype", ktype, sel], cwd=work, check=True,
                       capture_output=True)
        native = os.path.join(work, sel + ".key")
        os.chmod(native, 0o600)
        pem = native
        if ktype == "ed25519":
            with open(native, "rb") as f:
                seed = base64.b64decode(f.read().strip())
            assert len(seed) == 32
            pem = os.path.join(work, sel + ".pem")
            body = base64.encodebytes(ED25519_PKCS8_PREFIX + seed).decode()
            with open(pem, "w") as f:
                f.write("-----BEGIN PRIVATE KEY-----\n%s-----END PRIVATE KEY-----\n" % body)
            os.chmod(pem, 0o600)
        with open(os.path.join(work, sel + ".dns")) as f:
            record = f.read().strip()
        out[sel] = (pem, record, native)
    assert "k=ed25519" in out["ed"][1]
    return out


def records_file(work, records, name="keys.txt"):
    """A file of "<name> <record>" lines: dkim_tool's and OpenDKIM's
    TestPublicKeys format alike."""
    path = os.path.join(work, name)
    with open(path, "w") as f:
        for qname, rec in records.items():
            f.write("%s %s\n" % (qname, rec))
    os.chmod(path, 0o600)
    return path
