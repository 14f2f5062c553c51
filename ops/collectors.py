"""
What /metrics reads when it is scraped: the metrics every process counted
(ops.metrics; added up over every process's files in multiprocess mode),
and the state of the system at that moment: holds outstanding and the money
they hold (PostgreSQL), settlements waiting in the journal, and the circuit
breakers of every channel and upstream key.

A part that cannot be read (its database or Redis away) is left out of the
scrape and flagged in switchboard_scrape_error rather than failing it: the
scrape that shows an outage must still answer.
"""

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field

from django.db.models import Count, Min, Sum
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from billing.models import Hold, Wallet
from config.db import run_db
from ops.metrics import POSTGRES_ERRORS
from relay import breakers, catalog

logger = logging.getLogger(__name__)

READ_SECONDS = 2.0
# Breaker states, as switchboard_breaker_state tells them.
CLOSED, FAILING, OPEN = 0, 1, 2


@dataclass
class Holds:
    count: int
    amount: int
    held: int
    oldest_seconds: float


@dataclass
class Breaker:
    kind: str  # "channel" or "key"
    id: int
    channel: str
    state: int


@dataclass
class State:
    holds: Holds | None = None
    journal: int | None = None
    breakers: list[Breaker] | None = None
    errors: dict[str, bool] = field(default_factory=dict)


def journal_depth() -> int:
    """Settlements waiting in the journal for the database (billing.journal),
    0 where there is no journal."""
    try:
        from billing import journal
    except ImportError:
        return 0
    return journal.depth()


def _read_holds_and_journal() -> tuple[Holds, int]:
    """Read the holds and the journal (on a database thread)."""
    found = Hold.objects.aggregate(
        count=Count("pk"), amount=Sum("amount"), oldest=Min("created_at")
    )
    held = Wallet.objects.filter(held__gt=0).aggregate(held=Sum("held"))["held"]
    oldest = found["oldest"]
    holds = Holds(
        count=found["count"],
        amount=found["amount"] or 0,
        held=held or 0,
        oldest_seconds=(timezone.now() - oldest).total_seconds() if oldest else 0.0,
    )
    return holds, journal_depth()


async def _read_breakers() -> list[Breaker]:
    snapshot = await catalog.current()
    names = snapshot.breaker_names
    # The shared state (Redis, or this process's while Redis is away).
    opened, failing = await breakers.breakers().store.snapshot(names)
    now = breakers.wall_clock()
    found = []
    for channel in snapshot.by_id.values():
        parts = [("channel", channel.id, breakers.channel_name(channel.id))]
        parts += [
            ("key", key_id, breakers.key_name(key_id))
            for key_id, _ in channel.api_keys
            if key_id is not None
        ]
        for kind, id_, name in parts:
            state = (
                OPEN
                if opened.get(name, 0) > now
                else FAILING
                if name in failing
                else CLOSED
            )
            found.append(Breaker(kind, id_, channel.name, state))
    return found


async def read_state() -> State:
    state = State()
    database, breaker_states = await asyncio.gather(
        asyncio.wait_for(run_db(_read_holds_and_journal), READ_SECONDS),
        asyncio.wait_for(_read_breakers(), READ_SECONDS),
        return_exceptions=True,
    )
    if isinstance(database, BaseException):
        POSTGRES_ERRORS.labels("metrics").inc()
        logger.warning("metrics: could not read holds: %r", database)
        state.errors["holds"] = True
    else:
        state.holds, state.journal = database
        state.errors["holds"] = False
    if isinstance(breaker_states, BaseException):
        logger.warning("metrics: could not read breakers: %r", breaker_states)
        state.errors["breakers"] = True
    else:
        state.breakers = breaker_states
        state.errors["breakers"] = False
    return state


class StateCollector:
    """The state read at this scrape, as metrics."""

    def __init__(self, state: State):
        self.state = state

    def collect(self):
        state = self.state
        if state.holds is not None:
            holds = state.holds
            yield _gauge(
                "switchboard_holds_outstanding",
                "Holds of requests in flight (or left by a dead process).",
                holds.count,
            )
            yield _gauge(
                "switchboard_holds_outstanding_nano_usd",
                "Credit reserved by the holds outstanding, in nano-USD.",
                holds.amount,
            )
            yield _gauge(
                "switchboard_wallets_held_nano_usd",
                "Sum of the wallets' held credit, in nano-USD (equals the holds' "
                "sum when the books agree).",
                holds.held,
            )
            yield _gauge(
                "switchboard_holds_oldest_age_seconds",
                "Age of the oldest hold outstanding (0 without holds).",
                holds.oldest_seconds,
            )
        if state.journal is not None:
            yield _gauge(
                "switchboard_journal_depth",
                "Settlements waiting in the journal for the database.",
                state.journal,
            )
        if state.breakers is not None:
            family = GaugeMetricFamily(
                "switchboard_breaker_state",
                "Circuit breaker of each channel and upstream key: 0 closed, "
                "1 failures recorded (half-open after a cool-down), 2 open.",
                labels=["kind", "id", "channel"],
            )
            for breaker in state.breakers:
                family.add_metric(
                    [breaker.kind, str(breaker.id), breaker.channel], breaker.state
                )
            yield family
        errors = GaugeMetricFamily(
            "switchboard_scrape_error",
            "1 when a part of this scrape could not be read.",
            labels=["part"],
        )
        for part, failed in sorted(state.errors.items()):
            errors.add_metric([part], 1 if failed else 0)
        yield errors


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class _Counted:
    """This process's registry (ops.metrics, and the process's own figures)."""

    def collect(self):
        yield from REGISTRY.collect()


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def _registry(state: State) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(registry)
    else:
        registry.register(_Counted())
    registry.register(StateCollector(state))
    return registry


async def exposition(accept: str = "") -> tuple[bytes, str]:
    """Return the scrape's text and its content type: the format the
    scraper's Accept header asks for (Prometheus's text 0.0.4 by default,
    OpenMetrics when asked)."""
    started = time.perf_counter()
    encode, content_type = choose_encoder(accept)
    state = await read_state()
    # Reading every process's files is file work: off the event loop.
    body = await asyncio.to_thread(encode, _registry(state))
    logger.debug("metrics scraped in %.1f ms", (time.perf_counter() - started) * 1e3)
    return body, content_type
