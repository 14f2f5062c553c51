"""
Switchboard's Prometheus metrics: their definitions, and the one function
that records a /v1 request.

A shared utility like exports/: it imports no project app, so domain code
(the relay, billing, config) imports it to count what it sees. What is read
at scrape time (holds, breakers, the journal) lives in ops.collectors, and
/metrics itself in ops.views.

With PROMETHEUS_MULTIPROC_DIR set before the first import of
prometheus_client, every process (uvicorn workers, Celery) writes its values
to files there and a scrape of any worker adds them up (ops.collectors);
otherwise the values live in this process's default registry.
"""

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "switchboard_requests",
    "Requests to /v1 by endpoint, model, channel, HTTP status and outcome "
    "(the usage record's status; 'refused' before any hold was placed).",
    ["endpoint", "model", "channel", "status", "outcome"],
)
ADDED_LATENCY = Histogram(
    "switchboard_added_latency_seconds",
    "Time the relay adds to a request that reached an upstream: its whole "
    "time in the relay minus the upstream's part.",
    ["endpoint", "stream"],
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1),
)
UPSTREAM_LATENCY = Histogram(
    "switchboard_upstream_latency_seconds",
    "Time from the first upstream attempt to the end of the upstream's "
    "answer (failovers included), by channel.",
    ["channel", "stream"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
FIRST_BYTE = Histogram(
    "switchboard_stream_first_byte_seconds",
    "Time from a streamed request's arrival to its first byte of answer.",
    ["channel"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)

# Counted by billing: a reserve or settle retried on a fresh connection, and
# a settlement written to the journal because the database stayed away.
SETTLEMENT_RETRIES = Counter(
    "switchboard_settlement_retries",
    "Reserve or settle statements retried after a broken database connection.",
)
SETTLEMENT_JOURNALED = Counter(
    "switchboard_settlements_journaled",
    "Settlements written to the journal while the database was unreachable.",
)

# Counted where the failure is seen; `component` names the caller.
REDIS_ERRORS = Counter(
    "switchboard_redis_errors", "Failed Redis calls, by component.", ["component"]
)
GROUP_COMMITS = Counter(
    "switchboard_group_commits",
    "Batches of concurrent holds or settlements sent as one transaction "
    "(config.db.GroupCommit), by outcome (rolled_back: run one by one).",
    ["outcome"],
)
GROUPED_STATEMENTS = Counter(
    "switchboard_grouped_statements",
    "Holds and settlements that went in a committed batch.",
)
POSTGRES_ERRORS = Counter(
    "switchboard_postgres_errors",
    "Failed PostgreSQL calls, by component.",
    ["component"],
)
TASK_FAILURES = Counter(
    "switchboard_celery_task_failures", "Celery tasks that raised, by task.", ["task"]
)

# Label children by their label values: .labels() takes a lock and builds
# the key on every call, a dictionary lookup does not. Bounded by the label
# values, which come from the catalog and fixed lists, never from a client.
_counters: dict[tuple, Counter] = {}
_histograms: dict[tuple, Histogram] = {}
MAX_CHILDREN = 20_000


def _child(cache: dict, key: tuple, metric, values: tuple):
    if len(cache) >= MAX_CHILDREN:
        cache.clear()
    found = cache[key] = metric.labels(*values)
    return found


def observe_request(
    endpoint: str,
    model: str,
    channel: str,
    status: int,
    outcome: str,
    stream: bool,
    upstream: float | None = None,
    added: float | None = None,
    first_byte: float | None = None,
) -> None:
    """Count one /v1 request and observe its timings (seconds; None: the
    request had no such part)."""
    key = (endpoint, model, channel, status, outcome)
    counter = _counters.get(key)
    if counter is None:
        values = (endpoint, model, channel, str(status), outcome)
        counter = _child(_counters, key, REQUESTS, values)
    counter.inc()
    if upstream is not None:
        _observe(UPSTREAM_LATENCY, (channel, stream), upstream)
        _observe(ADDED_LATENCY, (endpoint, stream), added)
    if first_byte is not None:
        _observe(FIRST_BYTE, (channel,), first_byte)


def _observe(metric: Histogram, values: tuple, seconds: float) -> None:
    key = (metric, values)
    histogram = _histograms.get(key)
    if histogram is None:
        labels = [
            ("true" if v else "false") if isinstance(v, bool) else v for v in values
        ]
        histogram = _child(_histograms, key, metric, labels)
    histogram.observe(seconds)
