"""
Several processes, one /metrics: every uvicorn worker and Celery process
writes its metrics to PROMETHEUS_MULTIPROC_DIR, and a scrape of any worker
adds them all up. The same process logs JSON lines only.
"""

import subprocess
import sys

import httpx
import orjson
import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.processes import ROOT, switchboard_process

MESSAGES = [{"role": "user", "content": "Hello"}]
WRITER = """
from ops.metrics import observe_request
observe_request("embeddings", "text-embedding-3-small", "other-process", 200, "ok",
                False, 0.25, 0.001)
"""


def database_url() -> str:
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )


def requests_total(text: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "switchboard_requests_total":
                labels = sample.labels
                key = (labels["endpoint"], labels["channel"], labels["status"])
                found[key] = found.get(key, 0) + sample.value
    return found


@pytest.mark.postgres
def test_one_scrape_adds_up_every_process(
    transactional_db, tmp_path, channel, alice, fake
):
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
        "DATABASE_URL": database_url(),
        "SWITCHBOARD_LOG_FORMAT": "json",
    }
    # Another process (a second worker, Celery) counts a request of its own.
    subprocess.run(
        [sys.executable, "-c", WRITER],
        cwd=ROOT,
        env={**env, "PATH": "/usr/bin:/bin"},
        check=True,
    )
    with switchboard_process(tmp_path, **env) as server:
        ids = []
        for _ in range(2):
            response = httpx.post(
                f"{server.url}/v1/chat/completions",
                json={"model": "gpt-4.1-mini", "messages": MESSAGES},
                headers={"authorization": f"Bearer {alice.secret}"},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            ids.append(response.headers["x-request-id"])
        scraped = httpx.get(f"{server.url}/metrics", timeout=10)
        healthz = httpx.get(f"{server.url}/healthz").json()
    assert scraped.status_code == 200
    counted = requests_total(scraped.text)
    assert counted[("chat.completions", "fake-openai", "200")] == 2
    assert counted[("embeddings", "other-process", "200")] == 1
    # Both processes wrote their own files into the one directory.
    pids = {path.stem.rsplit("_", 1)[1] for path in shared.glob("counter_*.db")}
    assert str(healthz["pid"]) in pids
    assert len(pids) == 2
    # The state read at scrape time is told once, not once per process.
    assert scraped.text.count("\nswitchboard_holds_outstanding ") == 1

    # Every line the server wrote is JSON, its request lines among them.
    lines = [orjson.loads(line) for line in server.lines() if line.strip()]
    assert any("Uvicorn running" in line["message"] for line in lines)
    logged = {
        line["request_id"]: line
        for line in lines
        if line["logger"] == "switchboard.requests"
    }
    assert set(ids) <= set(logged)
    assert logged[ids[0]]["tenant_id"] == alice.tenant.pk
    assert logged[ids[0]]["cost_nano_usd"] > 0
