"""Fixtures of the fakes' own tests (the fakes themselves are the suite's:
tests/conftest.py starts each once per session and resets it around each
test)."""

from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client
