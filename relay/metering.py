"""
The money side of one relayed request: size and place its hold, then settle
it exactly once, whatever happened to the request in between.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from django.utils import timezone

from accounts.auth import KeyIdentity
from billing import workers
from billing.budgets import BudgetExceeded
from billing.holds import hold_release_async, wallet_reserve_async
from billing.money import format_usd
from billing.pricing import TokenUsage, UnitPrices, hold_cost, plan_cost, usage_cost
from billing.settlement import Settlement, usage_settle_async
from config.db import CONNECTION_ERRORS, run_db
from ops import requestlog
from relay import errors, limits
from relay.background import spawn
from relay.catalog import ChannelInfo, ModelInfo
from relay.formats.usage import Bill
from relay.models import UsageRecord
from relay.redaction import redact
from relay.services import api_key_touch, usage_description

logger = logging.getLogger(__name__)

Status = UsageRecord.Status
# Frozen: one shared instance spares building one per settlement.
NOTHING_USED = TokenUsage()

# When this process last recorded each key's use (monotonic seconds).
_touched: dict[int, float] = {}
LAST_USED_SECONDS = 60


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


# Bounds of what a request's attribution keeps: OpenAI's own limits on
# `metadata` (16 pairs, keys of 64 and values of 512 characters), and
# Anthropic's on metadata.user_id (256).
END_USER_MAX = 256
TAGS_MAX = 16
TAG_KEY_MAX = 64
TAG_VALUE_MAX = 512


def attribution(payload: dict, endpoint: str) -> tuple[str, dict[str, str]]:
    """
    Return who the customer says a request is for, and its tags: OpenAI's
    `user` (or the Responses API's `safety_identifier`), Anthropic's
    `metadata.user_id`; and the text pairs of OpenAI's `metadata` object.
    What exceeds the bounds above is cut or left out, never refused: the
    upstream judges the request.
    """
    metadata = payload.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    if endpoint == "messages":
        user = metadata.get("user_id")
        metadata = {}
    else:
        user = payload.get("user") or payload.get("safety_identifier")
    end_user = user[:END_USER_MAX] if isinstance(user, str) else ""
    tags = {}
    for key, value in metadata.items():
        if len(tags) == TAGS_MAX:
            break
        if isinstance(value, str) and key and len(key) <= TAG_KEY_MAX:
            tags[key] = value[:TAG_VALUE_MAX]
    return end_user, tags


class Ending(NamedTuple):
    """How a request ended, as its usage record tells it."""

    status: str
    http_status: int
    error: str = ""


SERVED = Ending(Status.OK, 200)


def ending(
    failure: BaseException | None = None,
    *,
    answered: bool = False,
    upstream_error: str = "",
    cut_short: bool = False,
) -> Ending:
    """
    Return how a request ended: served (`failure` None) or by raising
    `failure`. Once `answered` the client has a 200 and the start of the
    answer (a stream), so what went wrong after is told by the status alone.
    A stream that was served may still have ended with the upstream's own
    error event (`upstream_error`) or before its end (`cut_short`).
    """
    if failure is None:
        if upstream_error:
            return Ending(Status.UPSTREAM_ERROR, 200, upstream_error)
        if cut_short:
            return Ending(
                Status.UPSTREAM_CLOSED, 200, "upstream closed the stream early"
            )
        return SERVED
    if isinstance(failure, asyncio.CancelledError | GeneratorExit):
        # 499: the client closed the connection before the answer (nginx's).
        status, http_status, error = Status.CLIENT_CLOSED, 499, "client disconnected"
    elif isinstance(failure, errors.RelayError):
        status = Status.REJECTED if failure.status < 500 else Status.UPSTREAM_ERROR
        http_status, error = failure.status, failure.message
    else:
        status, http_status, error = Status.UPSTREAM_ERROR, 500, "internal error"
    return Ending(status, 200 if answered else http_status, error)


@dataclass
class MeteredRequest:
    """One authenticated request on its way through the relay: what it may
    cost, what it held, and where it was served."""

    request_id: str
    identity: KeyIdentity
    model: ModelInfo
    endpoint: str
    stream: bool
    # The prompt's tokens as a hold counts them (cheaply, see relay.tokens).
    prompt_estimate: int
    # The prompt's tokens counted exactly, to bill an answer without usage.
    exact_prompt: Callable[[], int] | None = None
    # This request's prices: the model's, with the per-image price of the
    # quality and size asked for image models.
    prices: UnitPrices | None = None
    # The same choice applied to other price tables (the channel's costs).
    unit_prices: Callable[[ModelInfo], UnitPrices] | None = None
    hold: int = 0
    # The channel and upstream key of the attempt that answered.
    channel: ChannelInfo | None = None
    key_id: int | None = None
    # The Responses API id of the answer, if it has one.
    response_id: str = ""
    started: float = field(default_factory=time.perf_counter)
    # Whether the key's per-minute counters counted this request.
    rate_counted: bool = False
    first_byte: float | None = None
    settled: bool = False
    # When the first upstream attempt began (relay.attempts).
    upstream_started: float | None = None
    # What the metrics and the request log see of it (ops.requestlog).
    trace: requestlog.Trace | None = None
    # Whom the customer says it is for, and its tags (attribution()).
    end_user: str = ""
    tags: dict | None = None
    # What it cost and what is left, once settled (relay.answers tells it).
    bill: Bill | None = None
    # How it ended and what it used, once settled (relay.response_cache
    # keeps answers that were served).
    ended: Ending | None = None
    used: TokenUsage | None = None
    # Answered from the response cache: what it would have cost without it.
    uncached_cost: int | None = None

    def __post_init__(self):
        trace = self.trace = requestlog.current.get()
        if trace is not None:
            self._describe(trace)
        if self.prices is None:
            self.prices = self.model.prices
        if self.exact_prompt is None:
            self.exact_prompt = lambda: self.prompt_estimate

    def attribute(self, payload: dict) -> None:
        """Record whom the request is for and its tags, from its body."""
        self.end_user, self.tags = attribution(payload, self.endpoint)

    def use(self, attempt: ChannelInfo) -> None:
        """Record the channel attempt that answered."""
        self.channel, self.key_id = attempt, attempt.key_id

    async def reserve(
        self, worst: TokenUsage, advice: Callable[[TokenUsage], str]
    ) -> None:
        """Hold the cost of `worst` or refuse with 402, ending with `advice`."""
        worst = replace(worst, requests=1)
        self.hold = self.cost(worst, hold=True)
        workers.ensure_running()
        task = spawn(
            wallet_reserve_async(
                tenant_id=self.identity.tenant_id,
                request_id=self.request_id,
                amount=self.hold,
                promo_ok=self.model.promo_ok,
                owner=workers.name(),
                key_id=self.identity.key_id,
                with_budgets=self.identity.has_budgets,
            )
        )
        try:
            reserved = await asyncio.shield(task)
        except BudgetExceeded as exceeded:
            self.settled = True
            raise errors.budget_exceeded(exceeded) from None
        except asyncio.CancelledError:
            # The client left while the hold was being placed: the database
            # thread finishes regardless, so release whatever it reserved.
            self.settled = True
            spawn(self._release_when_placed(task))
            raise
        except CONNECTION_ERRORS:
            # Refused with a 503; the hold may have been placed before the
            # connection broke.
            self.settled = True
            workers.release_later(self.identity.tenant_id, self.request_id)
            raise
        if not reserved:
            self.settled = True
            raise errors.insufficient_balance(
                f"Insufficient balance: this request may cost up to "
                f"{format_usd(self.hold)}{advice(worst)}"
            )

    def cost(self, usage: TokenUsage, *, hold: bool = False) -> int:
        """What `usage` costs this tenant: its plan's share of the prices.
        `hold`: `usage` is a worst case whose prompt is an estimate, priced
        at the tier it may reach (billing.pricing.hold_cost)."""
        priced = hold_cost if hold else usage_cost
        return plan_cost(priced(usage, self.prices), self.identity.price_multiplier)

    def _upstream_cost(self, usage: TokenUsage) -> int | None:
        """What the channel's upstream charges for `usage`, if it has cost
        prices for this model."""
        if self.channel is None:
            return None
        costs = self.channel.costs.get(self.model.name)
        if costs is None or self.unit_prices is None:
            return None
        try:
            return usage_cost(usage, self.unit_prices(costs))
        except errors.RelayError:  # no cost for this image quality and size
            return None

    async def _release_when_placed(self, reserving: asyncio.Future) -> None:
        try:
            placed = await reserving
        except BudgetExceeded:
            return
        if placed:
            await hold_release_async(
                tenant_id=self.identity.tenant_id,
                request_id=self.request_id,
                with_budgets=self.identity.has_budgets,
            )

    async def settle(
        self, ended: Ending, *, usage: TokenUsage | None, estimated: bool = False
    ) -> Settlement | None:
        """Charge for `usage` (nothing if None) and write the usage record
        saying how the request `ended`."""
        if self.settled:
            return None
        self.settled = True
        if usage is not None and usage != NOTHING_USED:
            usage = replace(usage, requests=1)
        self.ended, self.used = ended, usage
        record = self._record(ended, usage, estimated)
        self._tell(record)
        _touch_key(self.identity.key_id)
        # Shielded: a client disconnect cancels the request's task, never the
        # settlement of what was already produced.
        settling = spawn(
            usage_settle_async(
                record=record,
                description=usage_description(record),
                promo_ok=self.model.promo_ok,
                with_budgets=self.identity.has_budgets,
            )
        )
        settlement = await asyncio.shield(settling)
        self.bill = _bill(record, settlement)
        if self.rate_counted:
            used = record.prompt_tokens + record.completion_tokens
            await limits.settle(self.identity, used - self.prompt_estimate)
        return settlement

    def _describe(self, trace: requestlog.Trace) -> None:
        trace.request_id = self.request_id
        trace.tenant_id = self.identity.tenant_id
        trace.endpoint = self.endpoint
        trace.model = self.model.name
        trace.stream = self.stream

    def _tell(self, record: UsageRecord) -> None:
        """Tell the request's trace how it ended; without one (a request
        that did not come through config.asgi), count and log it now."""
        trace = self.trace
        if trace is None:
            trace = requestlog.Trace(self.started)
            self._describe(trace)
        trace.upstream_started = self.upstream_started
        trace.upstream_done = time.perf_counter()
        trace.first_byte = self.first_byte
        trace.channel = self.channel.name if self.channel else ""
        trace.outcome = record.status
        trace.status = record.http_status
        trace.prompt_tokens = record.prompt_tokens
        trace.completion_tokens = record.completion_tokens
        trace.cost = record.cost
        if self.trace is None:
            requestlog.finish(trace)

    def _record(
        self, ended: Ending, usage: TokenUsage | None, estimated: bool
    ) -> UsageRecord:
        now = time.perf_counter()
        usage = usage or NOTHING_USED
        # The one tier of prices the prompt falls in: the record keeps it.
        prices = self.prices.at(usage.prompt)
        return UsageRecord.unsaved(
            request_id=self.request_id,
            tenant_id=self.identity.tenant_id,
            api_key_id=self.identity.key_id,
            channel_id=self.channel.id if self.channel else None,
            upstream_key_id=self.key_id,
            endpoint=self.endpoint,
            response_id=self.response_id[:100],
            model=self.model.name,
            routed_from=self.model.routed_from,
            end_user=self.end_user,
            tags=self.tags or {},
            stream=self.stream,
            status=ended.status,
            http_status=ended.http_status,
            prompt_tokens=usage.prompt,
            cached_tokens=usage.cached,
            cache_write_tokens=usage.cache_write,
            cache_write_1h_tokens=min(usage.cache_write_1h, usage.cache_write),
            completion_tokens=usage.completion,
            reasoning_tokens=min(usage.reasoning, usage.completion),
            image_input_tokens=usage.image_input,
            cached_image_input_tokens=min(
                usage.cached_image_input, usage.image_input, usage.cached
            ),
            images=usage.images,
            usage_source=(
                UsageRecord.Source.CACHE
                if self.uncached_cost is not None
                else UsageRecord.Source.NONE
                if usage == NOTHING_USED
                else UsageRecord.Source.ESTIMATED
                if estimated
                else UsageRecord.Source.REPORTED
            ),
            input_price=prices.input,
            cached_input_price=prices.cached_input,
            cache_write_price=prices.cache_write,
            output_price=prices.output,
            image_input_price=prices.image_input,
            cache_write_1h_price=prices.cache_write_1h,
            cached_image_input_price=prices.cached_image_input,
            long_context_threshold=(
                self.prices.long_context.threshold
                if self.prices.is_long(usage.prompt)
                else None
            ),
            per_image_price=prices.per_image,
            per_request_price=prices.per_request,
            price_multiplier=self.identity.price_multiplier,
            cost=self.cost(usage),
            upstream_cost=(
                0 if self.uncached_cost is not None else self._upstream_cost(usage)
            ),
            uncached_cost=self.uncached_cost,
            latency_ms=int((now - self.started) * 1000),
            ttfb_ms=(
                int((self.first_byte - self.started) * 1000)
                if self.first_byte is not None
                else None
            ),
            # An upstream's text may hold what the customer must not see.
            error=redact(ended.error, self.channel)[:300],
            created_at=timezone.now(),
        )


def _bill(record: UsageRecord, settlement: Settlement) -> Bill:
    """What the client is told of its settled request: the cost at its plan,
    and, unless the settlement waits in the journal, what was charged and
    the balance after it."""
    if settlement.journaled or settlement.already_settled:
        return Bill(cost=record.cost)
    return Bill(
        cost=record.cost, charged=settlement.charged, balance=settlement.balance
    )


def _touch_key(key_id: int) -> None:
    """Update the key's last_used_at, at most once a minute per process."""
    now = time.monotonic()
    if _touched.get(key_id, -LAST_USED_SECONDS) > now - LAST_USED_SECONDS:
        return
    if len(_touched) > 50_000:
        _touched.clear()
    _touched[key_id] = now
    spawn(run_db(api_key_touch, key_id=key_id))
