"""
One /v1 request as the metrics and the request log see it.

The API handler (config.asgi) opens a Trace when a /v1 request arrives and
finishes it once the response has been sent; on its way, relay.metering
fills in what it knows of a metered request: tenant, model, channel, how it
ended, its tokens and cost, and when its upstream part began and ended.
Finishing counts the request (ops.metrics) and, when the request log is on
(SWITCHBOARD_LOG_FORMAT=json), writes its one line to the
`switchboard.requests` logger.

Outcomes: a metered request's is its usage record's status (ok, rejected,
upstream_error, client_closed, upstream_closed); a request that never got
that far (a bad key, a refused hold, the model list) is "ok", "refused"
(4xx) or "error" (5xx) by its status.
"""

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass

from ops.metrics import observe_request

logger = logging.getLogger("switchboard.requests")

# Endpoint labels of the requests that are not metered, by path: a fixed
# list, so that no client can make up a label value.
ENDPOINTS = {
    "/v1/chat/completions": "chat.completions",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
    "/v1/images/generations": "images.generations",
    "/v1/messages": "messages",
    "/v1/messages/count_tokens": "messages.count_tokens",
    "/v1/responses": "responses",
    "/v1/models": "models",
}
CLIENT_CLOSED = 499


def endpoint_of(path: str) -> str:
    found = ENDPOINTS.get(path)
    if found is not None:
        return found
    if path.startswith("/v1/responses/"):
        return "responses.stored"
    return "unknown"


@dataclass(slots=True)
class Trace:
    started: float  # time.perf_counter() at arrival
    endpoint: str = "unknown"
    path: str = ""
    request_id: str = ""
    tenant_id: int | None = None
    key_prefix: str = ""
    model: str = ""
    channel: str = ""
    stream: bool = False
    # Set by the metering once the request is settled (see the module's doc).
    outcome: str = ""
    # The response's HTTP status; 0 until known.
    status: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: int = 0  # nano-USD
    upstream_started: float | None = None
    upstream_done: float | None = None
    first_byte: float | None = None


current: ContextVar[Trace | None] = ContextVar("switchboard_trace", default=None)


def logging_on() -> bool:
    return logger.isEnabledFor(logging.INFO)


def finish(trace: Trace) -> None:
    """Count the request and log its line: it has been answered (or its
    client has left)."""
    total = time.perf_counter() - trace.started
    status = trace.status or CLIENT_CLOSED
    outcome = trace.outcome or (
        "ok" if status < 400 else "refused" if status < 500 else "error"
    )
    upstream = added = None
    if trace.upstream_started is not None and trace.upstream_done is not None:
        upstream = trace.upstream_done - trace.upstream_started
        added = total - upstream
    first_byte = None
    if trace.stream and trace.first_byte is not None:
        first_byte = trace.first_byte - trace.started
    observe_request(
        trace.endpoint,
        trace.model,
        trace.channel,
        status,
        outcome,
        trace.stream,
        upstream,
        added,
        first_byte,
    )
    if logger.isEnabledFor(logging.INFO):
        _log(trace, status, outcome, total, upstream, added, first_byte)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _log(
    trace: Trace,
    status: int,
    outcome: str,
    total: float,
    upstream: float | None,
    added: float | None,
    first_byte: float | None,
) -> None:
    fields = {
        "request_id": trace.request_id,
        "tenant_id": trace.tenant_id,
        "key_prefix": trace.key_prefix,
        "endpoint": trace.endpoint,
        "path": trace.path,
        "model": trace.model,
        "channel": trace.channel,
        "stream": trace.stream,
        "status": status,
        "outcome": str(outcome),
        "prompt_tokens": trace.prompt_tokens,
        "completion_tokens": trace.completion_tokens,
        "cost_nano_usd": trace.cost,
        "total_ms": _ms(total),
        "upstream_ms": _ms(upstream),
        "added_ms": _ms(added),
        "ttfb_ms": _ms(first_byte),
    }
    logger.info(
        "%s %s %s %s %.1f ms",
        trace.endpoint,
        trace.model or "-",
        status,
        trace.request_id or "-",
        total * 1000,
        extra={"fields": fields},
    )
