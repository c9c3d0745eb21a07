"""`tern user add|passwd|del|list`: the users file's AUTH passwords (issue 3, CLI).

Runs the binary only (no server): with `-c FILE` on a test config, and without it on the
embedded default's var/users in a scratch working directory."""
import os
import stat
import subprocess

import pytest

from ternlib import TERN_BIN, TernServer, scaled


def tern(*args, stdin=None, cwd=None, timeout=30):
    p = subprocess.run([os.path.abspath(TERN_BIN)] + list(args), input=stdin, capture_output=True, cwd=cwd,
                       timeout=scaled(timeout))
    return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")


@pytest.fixture
def conf(tmp_path):
    """A config (not started) whose users file holds the harness's default users."""
    return TernServer(tmp_path / "cfg")


def read(path):
    with open(path, newline="") as f:  # line ends exactly as written
        return f.read()


def hash_of(path, name):
    for line in read(path).splitlines():
        if line.split(":", 1)[0].strip().lower() == name:
            return line.split(":", 1)[1].strip() if ":" in line else None
    raise AssertionError("no line for %s in:\n%s" % (name, read(path)))


def test_add_with_stdin(conf):
    rc, out = tern("user", "add", "zoe", "--stdin", "-c", conf.config_path, stdin=b"s3cret\n")
    assert rc == 0, out
    h = hash_of(conf.users_path, "zoe")
    assert h.startswith("$y$"), h
    # The other users are still there, and the file still loads.
    for u in ("alice", "bob@example.test", "carol"):
        assert u in read(conf.users_path)
    rc, out = tern("check-config", "-c", conf.config_path)
    assert rc == 0, out


def test_add_name_with_domain_and_case(conf):
    rc, out = tern("user", "add", "Zoe@Example.TEST", "--stdin", "-c", conf.config_path,
                   stdin=b"pw\n")
    assert rc == 0, out
    assert hash_of(conf.users_path, "zoe@example.test").startswith("$y$")


def test_add_duplicate_is_65(conf):
    assert tern("user", "add", "zoe", "--stdin", "-c", conf.config_path, stdin=b"pw\n")[0] == 0
    before = read(conf.users_path)
    rc, out = tern("user", "add", "ZOE", "--stdin", "-c", conf.config_path, stdin=b"pw\n")
    assert rc == 65, out
    assert "exists" in out
    # A user of the harness without a hash exists too.
    rc, out = tern("user", "add", "alice", "--stdin", "-c", conf.config_path, stdin=b"pw\n")
    assert rc == 65, out
    assert read(conf.users_path) == before


@pytest.mark.parametrize("name", ["bad/name", "../x", ".hidden", "a b", "x:y", "a#b", "",
                                  "a" * 65, "x@remote.example", "x@", "@example.test",
                                  "é@example.test"])
def test_bad_name_is_65(conf, name):
    before = read(conf.users_path)
    rc, out = tern("user", "add", name, "--stdin", "-c", conf.config_path, stdin=b"pw\n")
    assert rc == 65, out
    assert read(conf.users_path) == before


def test_passwd_changes_the_hash(conf):
    assert tern("user", "add", "zoe", "--stdin", "-c", conf.config_path, stdin=b"one\n")[0] == 0
    h1 = hash_of(conf.users_path, "zoe")
    rc, out = tern("user", "passwd", "zoe", "--stdin", "-c", conf.config_path, stdin=b"two\n")
    assert rc == 0, out
    h2 = hash_of(conf.users_path, "zoe")
    assert h2.startswith("$y$") and h2 != h1
    # A user without a hash gets one.
    rc, out = tern("user", "passwd", "carol", "--stdin", "-c", conf.config_path,
                   stdin=b"three\n")
    assert rc == 0, out
    assert hash_of(conf.users_path, "carol").startswith("$y$")
    rc, out = tern("check-config", "-c", conf.config_path)
    assert rc == 0, out


def test_passwd_unknown_user_is_65(conf):
    before = read(conf.users_path)
    rc, out = tern("user", "passwd", "nobody", "--stdin", "-c", conf.config_path,
                   stdin=b"pw\n")
    assert rc == 65, out
    assert read(conf.users_path) == before


def test_del(conf):
    rc, out = tern("user", "del", "carol", "-c", conf.config_path)
    assert rc == 0, out
    names = [l.split(":")[0].strip() for l in read(conf.users_path).splitlines()]
    assert "carol" not in names and "alice" in names and "dave" in names
    rc, out = tern("user", "del", "carol", "-c", conf.config_path)
    assert rc == 65, out


def test_list(conf):
    assert tern("user", "add", "zoe", "--stdin", "-c", conf.config_path, stdin=b"pw\n")[0] == 0
    rc, out = tern("user", "list", "-c", conf.config_path)
    assert rc == 0, out
    lines = out.splitlines()
    names = [l.split()[0] for l in lines]
    assert names == ["alice", "bob@example.test", "carol", "dave", "erin", "frank", "zoe"]
    assert "zoe" in lines  # has a password: nothing after the name
    assert any(l.startswith("alice") and "no password" in l for l in lines)


def test_comments_and_other_lines_kept(conf):
    with open(conf.users_path, "w", newline="") as f:
        f.write("# the users of example.test\n"
                "\n"
                "alice      # the boss\n"
                "bob@example.test: $6$old$hash   # keep me\r\n"
                "   carol\n"
                "dave")  # no final line end
    rc, out = tern("user", "passwd", "bob@example.test", "--stdin", "-c", conf.config_path,
                   stdin=b"pw\n")
    assert rc == 0, out
    rc, out = tern("user", "add", "zoe", "--stdin", "-c", conf.config_path, stdin=b"pw\n")
    assert rc == 0, out
    rc, out = tern("user", "del", "carol", "-c", conf.config_path)
    assert rc == 0, out
    lines = read(conf.users_path).split("\n")
    assert lines[0] == "# the users of example.test"
    assert lines[1] == ""
    assert lines[2] == "alice      # the boss"
    assert lines[3].startswith("bob@example.test: $y$")
    assert lines[3].endswith("   # keep me\r")
    assert lines[4] == "dave"
    assert lines[5].startswith("zoe: $y$")
    assert lines[6] == ""
    rc, out = tern("check-config", "-c", conf.config_path)
    assert rc == 0, out


def test_file_mode_0640(conf):
    os.chmod(conf.users_path, 0o644)
    rc, out = tern("user", "add", "zoe", "--stdin", "-c", conf.config_path, stdin=b"pw\n")
    assert rc == 0, out
    assert stat.S_IMODE(os.stat(conf.users_path).st_mode) == 0o640
    # No temporary file is left behind.
    assert [n for n in os.listdir(os.path.dirname(conf.users_path)) if ".tmp" in n] == []


def test_password_input_errors(conf):
    before = read(conf.users_path)
    rc, out = tern("user", "add", "zoe", "--stdin", "-c", conf.config_path, stdin=b"")
    assert rc == 65, out
    rc, out = tern("user", "add", "zoe", "--stdin", "-c", conf.config_path, stdin=b"\n")
    assert rc == 65, out
    rc, out = tern("user", "add", "zoe", "--stdin", "-c", conf.config_path,
                   stdin=b"x" * 256 + b"\n")
    assert rc == 65, out
    assert read(conf.users_path) == before
    # Only the first line is the password; CRLF is a line end.
    rc, out = tern("user", "add", "zoe", "--stdin", "-c", conf.config_path,
                   stdin=b"pw\r\nsecond line\n")
    assert rc == 0, out


def test_usage_is_64(conf):
    for args in (["user"], ["user", "frobnicate"], ["user", "add"], ["user", "del"],
                 ["user", "add", "zoe", "--bogus"], ["user", "list", "extra"],
                 ["user", "del", "zoe", "--stdin"], ["user", "add", "a", "b"]):
        rc, out = tern(*args, "-c", conf.config_path, stdin=b"pw\n")
        assert rc == 64, (args, out)


def test_config_errors_are_78(conf, tmp_path):
    rc, out = tern("user", "list", "-c", str(tmp_path / "missing.conf"))
    assert rc == 78, out
    bare = tmp_path / "nousers.conf"
    bare.write_text("local_domains = example.test\n")
    rc, out = tern("user", "add", "zoe", "--stdin", "-c", str(bare), stdin=b"pw\n")
    assert rc == 78, out
    assert "users_file" in out


def test_embedded_default_var_users(tmp_path):
    """Without -c: var/users below the working directory, var/ created."""
    rc, out = tern("user", "add", "zoe", "--stdin", stdin=b"pw\n", cwd=str(tmp_path))
    assert rc == 0, out
    path = tmp_path / "var" / "users"
    assert hash_of(str(path), "zoe").startswith("$y$")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    # The embedded default's only local domain is localhost.
    rc, out = tern("user", "add", "yan@localhost", "--stdin", stdin=b"pw\n", cwd=str(tmp_path))
    assert rc == 0, out
    rc, out = tern("user", "add", "yan@example.org", "--stdin", stdin=b"pw\n",
                   cwd=str(tmp_path))
    assert rc == 65, out
    rc, out = tern("user", "list", cwd=str(tmp_path))
    assert rc == 0 and out.split() == ["zoe", "yan@localhost"], out
    rc, out = tern("user", "del", "zoe", cwd=str(tmp_path))
    assert rc == 0, out
    rc, out = tern("user", "list", cwd=str(tmp_path))
    assert rc == 0 and out.split() == ["yan@localhost"], out


def test_list_without_file(tmp_path):
    rc, out = tern("user", "list", cwd=str(tmp_path))
    assert rc == 0 and out == "", out
    assert not (tmp_path / "var").exists()


def test_add_creates_a_missing_users_file(conf):
    # A new installation: the config names a users file that does not exist yet. `add`
    # creates it (0640) instead of failing on the config; other commands still refuse.
    os.unlink(conf.users_path)
    rc, out = tern("user", "list", "-c", conf.config_path)
    assert rc == 78 and not os.path.exists(conf.users_path), (rc, out)
    rc, out = tern("user", "add", "zoe", "--stdin", "-c", conf.config_path, stdin=b"s3cret\n")
    assert rc == 0, out
    assert stat.S_IMODE(os.stat(conf.users_path).st_mode) == 0o640
    assert hash_of(conf.users_path, "zoe").startswith("$y$")
