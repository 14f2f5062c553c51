"""
The money side of one relayed request: size and place its hold, then settle
it exactly once, whatever happened to the request in between.
"""

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field

from django.utils import timezone

from accounts.auth import KeyIdentity
from billing.money import format_usd
from billing.pricing import TokenUsage, usage_cost
from billing.services import Settlement, hold_release, wallet_reserve
from config.db import run_db
from relay import errors
from relay.catalog import ChannelInfo, ModelInfo
from relay.models import UsageRecord
from relay.services import usage_record_settle

logger = logging.getLogger(__name__)

# Settlements still running after their request's task was cancelled; kept
# referenced so the event loop cannot drop them.
_settling: set[asyncio.Task] = set()


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def requested_output_tokens(payload: dict, model: ModelInfo) -> int:
    """Return the most output tokens the request can produce, for its hold."""
    limit = payload.get("max_completion_tokens")
    if limit is None:
        limit = payload.get("max_tokens")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        limit = model.max_output_tokens
    choices = payload.get("n")
    if not isinstance(choices, int) or isinstance(choices, bool) or choices < 1:
        choices = 1
    return min(limit, model.max_output_tokens) * choices


@dataclass
class Call:
    """One authenticated request on its way through the relay."""

    request_id: str
    identity: KeyIdentity
    model: ModelInfo
    endpoint: str
    stream: bool
    prompt_estimate: int
    hold: int = 0
    channel: ChannelInfo | None = None
    started: float = field(default_factory=time.perf_counter)
    first_byte: float | None = None
    settled: bool = False

    async def reserve(self, max_output_tokens: int) -> None:
        """Hold the request's worst-case cost or refuse it with 402."""
        prices = self.model.prices
        self.hold = (
            self.prompt_estimate * prices.input + max_output_tokens * prices.output
        )
        reserved = await run_db(
            wallet_reserve,
            tenant_id=self.identity.tenant_id,
            request_id=self.request_id,
            amount=self.hold,
        )
        if not reserved:
            self.settled = True
            raise errors.insufficient_balance(
                f"Insufficient balance: this request may cost up to "
                f"{format_usd(self.hold)} ({max_output_tokens} output tokens at "
                f"most). Top up, or lower max_tokens."
            )

    async def release(self) -> None:
        """Give the hold back untouched (the request never reached upstream)."""
        if self.settled:
            return
        self.settled = True
        await run_db(
            hold_release, tenant_id=self.identity.tenant_id, request_id=self.request_id
        )

    async def settle(
        self,
        *,
        status: str,
        http_status: int,
        usage: TokenUsage | None,
        estimated: bool = False,
        error: str = "",
    ) -> Settlement | None:
        """Charge for `usage` (nothing if None) and write the usage record."""
        if self.settled:
            return None
        self.settled = True
        record = self._record(status, http_status, usage, estimated, error)
        task = asyncio.ensure_future(run_db(usage_record_settle, record=record))
        _settling.add(task)
        task.add_done_callback(_settled)
        # Shielded: a client disconnect cancels the request's task, never the
        # settlement of what was already produced.
        return await asyncio.shield(task)

    def _record(
        self,
        status: str,
        http_status: int,
        usage: TokenUsage | None,
        estimated: bool,
        error: str,
    ) -> UsageRecord:
        now = time.perf_counter()
        prices = self.model.prices
        usage = usage or TokenUsage()
        return UsageRecord(
            request_id=self.request_id,
            tenant_id=self.identity.tenant_id,
            api_key_id=self.identity.key_id,
            channel_id=self.channel.id if self.channel else None,
            endpoint=self.endpoint,
            model=self.model.name,
            stream=self.stream,
            status=status,
            http_status=http_status,
            prompt_tokens=usage.prompt,
            cached_tokens=usage.cached,
            completion_tokens=usage.completion,
            usage_source=(
                UsageRecord.Source.NONE
                if usage == TokenUsage()
                else UsageRecord.Source.ESTIMATED
                if estimated
                else UsageRecord.Source.REPORTED
            ),
            input_price=prices.input,
            cached_input_price=prices.cached_input,
            output_price=prices.output,
            cost=usage_cost(usage, prices),
            latency_ms=int((now - self.started) * 1000),
            ttfb_ms=(
                int((self.first_byte - self.started) * 1000)
                if self.first_byte is not None
                else None
            ),
            error=error[:300],
            created_at=timezone.now(),
        )


def _settled(task: asyncio.Task) -> None:
    _settling.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("settlement failed", exc_info=task.exception())
