import pytest

from tests.clients.harness import ProxyCanary


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "clients: drives the real Codex CLI and Claude Code (npm)"
    )


@pytest.fixture
def canary():
    """A loopback proxy that refuses, and records, every non-loopback request."""
    canary = ProxyCanary().start()
    yield canary
    canary.stop()
