"""pytest fixtures for tern's integration tests (the machinery is in ternlib.py).

  server         a fresh `tern serve` with the default settings (see ternlib.TernServer)
  tern_factory   tern_factory(bare_lf="reject", users=[...], aliases=[...]) -> started server
  shared_server  one server per test module, for tests that look only at replies or find
                 their message by a unique marker
  client         an SMTPClient connected to shared_server, greeting already read

At teardown every server gets SIGTERM (then SIGKILL), and a test fails if the server's log
holds a sanitizer report ("AddressSanitizer", "runtime error:").
"""
import pytest

from ternlib import SANITIZED, TERN_BIN, TernServer


def _finish(server):
    server.stop()
    report = server.sanitizer_report()
    if report:
        pytest.fail("sanitizer report in the tern log:\n" + report, pytrace=False)


@pytest.fixture
def tern_factory(tmp_path):
    """Starts servers with their own settings: tern_factory(bare_lf="reject", users=[...])."""
    servers = []

    def make(users=None, aliases=None, extra_lines=(), start=True, **overrides):
        s = TernServer(tmp_path / ("srv%d" % len(servers)), overrides, users, aliases, extra_lines)
        servers.append(s)
        if start:
            s.start()
        return s

    yield make
    failures = []
    for s in servers:
        try:
            _finish(s)
        except BaseException as e:  # report every server, not only the first
            failures.append(str(e))
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


@pytest.fixture
def server(tern_factory):
    """A fresh server with the default settings."""
    return tern_factory()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for a whole module, for tests that only look at replies or find their
    messages by a unique marker."""
    s = TernServer(tmp_path_factory.mktemp("shared"))
    s.start()
    yield s
    _finish(s)


@pytest.fixture
def client(shared_server):
    c = shared_server.connect()
    yield c
    c.close()


def pytest_report_header(config):
    return "tern binary: %s (sanitized: %s)" % (TERN_BIN, SANITIZED)
