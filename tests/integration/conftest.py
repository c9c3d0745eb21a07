"""pytest fixtures for tern's integration tests (the machinery is in ternlib.py).

  server         a fresh `tern serve` with the default settings (see ternlib.TernServer)
  tern_factory   tern_factory(bare_lf="reject", users=[...], aliases=[...]) -> started server
  shared_server  one server per test module, for tests that look only at replies or find
                 their message by a unique marker
  client         an SMTPClient connected to shared_server, greeting already read
  tls_factory    tern_factory with TLS: the mx.test certificate, listeners "submission" and
                 "smtps" next to "mx", users with passwords (ternlib.PASSWORDS)
  tls_server     one such server per test module (module_tls_factory: more of them)
  module_factory tern_factory for servers shared by a test module
  certs          self-signed ECDSA certificates made once per session: certs["mx.test"],
                 certs["other.test"], certs["*.wild.test"], certs["mx.test-2"] -> (cert, key)
  dns_server     the test DNS server (tests/dns/start-unbound.sh), once per session:
                 dns_server.address is "127.0.0.1:PORT" for tern's `resolver` setting
  sink_factory   sink_factory(host, port, **capabilities) -> a started ternlib.SinkServer,
                 stopped at teardown

At teardown every server gets SIGTERM (then SIGKILL), and a test fails if the server's log
holds a sanitizer report ("AddressSanitizer", "runtime error:").

The tests run in parallel (pytest-xdist: `-n 4 --dist loadfile`, as ctest runs them): each
test picks its own ports and directories; fixtures shared by a module stay in one worker.
Every run has a base directory of its own (below).
"""
import shutil
import tempfile

import pytest

from ternlib import PASSWORDS, SANITIZED, TERN_BIN, DNSServer, SinkServer, TernServer, make_cert


def _is_worker(config):
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """A fresh base directory for this run, unless --basetemp names one. pytest's default,
    /tmp/pytest-of-USER/, is shared with every other pytest run of the same user, and each run
    makes it mode 0700 again at its start: that would cut tern's unprivileged processes off
    from the spools and Maildirs of a run in progress (prepare_for_unprivileged). Kept when a
    test failed, removed otherwise. xdist's workers get their part of it from the controller."""
    if _is_worker(config) or config.option.basetemp:
        return
    config.option.basetemp = tempfile.mkdtemp(prefix="tern-it-")
    config._tern_basetemp = config.option.basetemp


def pytest_sessionfinish(session, exitstatus):
    base = getattr(session.config, "_tern_basetemp", None)
    if base is None:
        return
    if exitstatus == 0:
        shutil.rmtree(base, ignore_errors=True)
    else:
        session.config._tern_kept = base


def pytest_terminal_summary(terminalreporter, config):
    kept = getattr(config, "_tern_kept", None)
    if kept:
        terminalreporter.write_line("test directories (servers' logs, spools, Maildirs) kept in %s" % kept)


def _finish(server):
    server.stop()
    report = server.sanitizer_report()
    if report:
        pytest.fail("sanitizer report in the tern log:\n" + report, pytrace=False)


def _factory(directory):
    """make(**settings) -> a server under `directory`, and finish() that stops them all."""
    servers = []

    def make(users=None, aliases=None, extra_lines=(), start=True, listeners=None, passwords=None, **overrides):
        s = TernServer(directory / ("srv%d" % len(servers)), overrides, users, aliases, extra_lines, listeners, passwords)
        servers.append(s)
        if start:
            s.start()
        return s

    def finish():
        failures = []
        for s in servers:
            try:
                _finish(s)
            except BaseException as e:  # report every server, not only the first
                failures.append(str(e))
        if failures:
            pytest.fail("\n".join(failures), pytrace=False)

    return make, finish


@pytest.fixture
def tern_factory(tmp_path):
    """Starts servers with their own settings: tern_factory(bare_lf="reject", users=[...])."""
    make, finish = _factory(tmp_path)
    yield make
    finish()


@pytest.fixture(scope="module")
def module_factory(tmp_path_factory):
    """tern_factory for servers shared by a test module."""
    make, finish = _factory(tmp_path_factory.mktemp("module"))
    yield make
    finish()


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


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    return {
        "mx.test": make_cert(d, "mx.test"),
        "other.test": make_cert(d, "other.test"),
        "*.wild.test": make_cert(d, "*.wild.test"),
        "mx.test-2": make_cert(d, "mx.test", name="mx.test-2"),  # same name, other key: reloads
    }


def _tls_settings(certs, kw):
    cert, key = certs["mx.test"]
    kw.setdefault("tls_cert", cert)
    kw.setdefault("tls_key", key)
    kw.setdefault("listeners", {"submission": "submission", "smtps": "smtps"})
    kw.setdefault("passwords", PASSWORDS)
    return kw


@pytest.fixture
def tls_factory(tern_factory, certs):
    """tls_factory(**settings) -> a started server with TLS, submission and smtps listeners."""
    return lambda **kw: tern_factory(**_tls_settings(certs, kw))


@pytest.fixture(scope="module")
def module_tls_factory(module_factory, certs):
    """tls_factory for servers shared by a test module."""
    return lambda **kw: module_factory(**_tls_settings(certs, kw))


@pytest.fixture(scope="module")
def tls_server(module_tls_factory):
    return module_tls_factory()


@pytest.fixture(scope="session")
def dns_server(tmp_path_factory):
    d = DNSServer(tmp_path_factory.mktemp("dns"))
    d.start()
    yield d
    d.stop()


@pytest.fixture
def sink_factory():
    """sink_factory(host, port, **capabilities) -> a started SinkServer (see ternlib)."""
    sinks = []

    def make(host, port, **kw):
        s = SinkServer(host, port, **kw)
        sinks.append(s)
        return s.start()

    yield make
    for s in sinks:
        s.stop()


def pytest_report_header(config):
    return "tern binary: %s (sanitized: %s)" % (TERN_BIN, SANITIZED)
