"""The request log: one line per /v1 request, as JSON when asked for."""

import logging
import sys
import time

import httpx
import orjson

from ops.logs import JsonFormatter
from relay.models import UsageRecord

MESSAGES = [{"role": "user", "content": "Hello"}]


def request_lines(caplog, count: int, timeout: float = 5.0) -> list[dict]:
    """The request log's records' fields, once `count` have been written
    (a request's line follows its response)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in caplog.records if r.name == "switchboard.requests"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_each_request_writes_one_line_with_its_facts(relay, channel, alice, caplog):
    caplog.set_level(logging.INFO, logger="switchboard.requests")
    served = httpx.post(
        f"{relay}/chat/completions",
        json={"model": "gpt-4.1-mini", "messages": MESSAGES},
        headers={"authorization": f"Bearer {alice.secret}"},
    )
    streamed = httpx.post(
        f"{relay}/chat/completions",
        json={"model": "gpt-4.1-mini", "messages": MESSAGES, "stream": True},
        headers={"authorization": f"Bearer {alice.secret}"},
    )
    refused = httpx.get(f"{relay}/models")
    assert (served.status_code, streamed.status_code, refused.status_code) == (
        200,
        200,
        401,
    )
    records = request_lines(caplog, 3)
    assert len(records) == 3
    lines = [orjson.loads(JsonFormatter().format(r)) for r in records]
    by_id = {line["request_id"]: line for line in lines}

    record = UsageRecord.objects.get(request_id=served.headers["x-request-id"])
    line = by_id[record.request_id]
    assert line["level"] == "INFO"
    assert line["logger"] == "switchboard.requests"
    assert line["tenant_id"] == alice.tenant.pk
    assert line["key_prefix"] == alice.secret[:12]
    assert line["endpoint"] == "chat.completions"
    assert line["path"] == "/v1/chat/completions"
    assert line["model"] == "gpt-4.1-mini"
    assert line["channel"] == "fake-openai"
    assert line["stream"] is False
    assert line["status"] == 200
    assert line["outcome"] == "ok"
    assert line["prompt_tokens"] == record.prompt_tokens > 0
    assert line["completion_tokens"] == record.completion_tokens > 0
    assert line["cost_nano_usd"] == record.cost > 0
    assert line["total_ms"] >= line["upstream_ms"] > 0
    assert abs(line["added_ms"] - (line["total_ms"] - line["upstream_ms"])) < 0.01
    assert line["ttfb_ms"] is None

    stream = by_id[streamed.headers["x-request-id"]]
    assert stream["stream"] is True
    assert stream["outcome"] == "ok"
    assert stream["completion_tokens"] > 0
    assert 0 < stream["ttfb_ms"] <= stream["total_ms"]

    anonymous = by_id[refused.headers["x-request-id"]]
    assert anonymous["endpoint"] == "models"
    assert anonymous["status"] == 401
    assert anonymous["outcome"] == "refused"
    assert anonymous["tenant_id"] is None
    assert anonymous["key_prefix"] == ""
    assert anonymous["upstream_ms"] is None


def test_a_line_is_json_with_exceptions_included():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "relay", logging.ERROR, __file__, 1, "failed %s", ("here",), None
        )
        record.exc_info = sys.exc_info()
    line = orjson.loads(JsonFormatter().format(record))
    assert line["message"] == "failed here"
    assert line["level"] == "ERROR"
    assert "ValueError: boom" in line["exc_info"]
    assert line["time"].endswith("+00:00")
