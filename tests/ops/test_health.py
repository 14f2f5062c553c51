"""/healthz and /readyz: public, cheap, and honest about what is down."""

import os

import httpx

from ops import checks
from tests.ops.processes import switchboard_process


def test_healthz_says_ok_with_the_answering_process(relay_server):
    response = httpx.get(f"{relay_server.base_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "pid": os.getpid()}
    assert response.headers["cache-control"] == "no-store"


def test_healthz_answers_whatever_the_host_header(relay_server):
    # Probes address a worker by its IP, which ALLOWED_HOSTS does not list.
    response = httpx.get(
        f"{relay_server.base_url}/healthz", headers={"host": "10.1.2.3:8000"}
    )
    assert response.status_code == 200


def test_readyz_names_each_check(relay_server, transactional_db):
    checks.forget()
    response = httpx.get(f"{relay_server.base_url}/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"] == "ok"
    expected_redis = "ok" if os.environ.get("REDIS_URL") else "not configured"
    assert body["checks"]["redis"] == expected_redis


def test_health_endpoints_need_no_credentials_and_refuse_writes(relay_server):
    for path in ("/healthz", "/readyz"):
        assert httpx.post(f"{relay_server.base_url}{path}").status_code == 405


def test_readyz_is_503_while_postgres_and_redis_are_unreachable(tmp_path):
    closed = "127.0.0.1:9"  # discard: nothing listens on loopback here
    with switchboard_process(
        tmp_path,
        DATABASE_URL=f"postgres://postgres@{closed}/switchboard",
        REDIS_URL=f"redis://{closed}/0",
    ) as server:
        alive = httpx.get(f"{server.url}/healthz")
        assert alive.status_code == 200
        assert alive.json()["pid"] == server.pid
        response = httpx.get(f"{server.url}/readyz", timeout=10)
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {
            "database": "unreachable",
            "migrations": "unknown",
            "redis": "unreachable",
        },
    }
