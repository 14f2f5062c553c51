"""
Each pytest-xdist worker gets a Redis database of its own.

Loaded with `-p tests.worker_env` (pyproject.toml's addopts), so that it
runs before pytest-django configures Django, which reads REDIS_URL once.
Tests reset what they share in Redis between them (tests/conftest.py
_forget_process_state scans and deletes keys): two workers on one database
would delete each other's keys mid-test. PostgreSQL needs nothing here:
pytest-django gives each worker its own test database (`test_<name>_gw0`),
and the process-level tests create databases of their own.
"""

import os
from urllib.parse import urlsplit

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
_redis_url = os.environ.get("REDIS_URL", "")
if _worker.startswith("gw") and _redis_url:
    # The suite's database number, then one more per worker after it.
    parts = urlsplit(_redis_url)
    base = int(parts.path.strip("/") or 0)
    number = base + 1 + int(_worker[2:])
    os.environ["REDIS_URL"] = parts._replace(path=f"/{number}").geturl()
