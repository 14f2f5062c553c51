"""
Channel probes: one tiny real request (a one-token chat completion) through
the channel's adapter, as staff's "test this channel" and the probe of
disabled keys send it. Called from sync code (the admin, the console, Celery).
"""

import asyncio
import time
from dataclasses import dataclass

import httpx

from relay import endpoints, upstream
from relay.attempts import is_timeout
from relay.catalog import ChannelInfo, channel_info
from relay.models import Channel, UpstreamKey
from relay.providers import adapter_for

PING = [{"role": "user", "content": "ping"}]


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: int
    status: int | None = None
    error: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"OK in {self.latency_ms} ms"
        where = f"HTTP {self.status}" if self.status else "no answer"
        return f"failed after {self.latency_ms} ms ({where}): {self.error}"


async def _check(info: ChannelInfo, payload: dict) -> CheckResult:
    adapter = adapter_for(info.kind)
    request = adapter.request(endpoints.CHAT_COMPLETIONS, info, payload, stream=False)
    started = time.perf_counter()
    try:
        response = await upstream.send(
            request,
            adapter.transport(),
            upstream.timeout(info.connect_timeout, info.read_timeout),
        )
        raw = await response.aread()
        await response.aclose()
    except httpx.HTTPError as exc:
        elapsed = int((time.perf_counter() - started) * 1000)
        return CheckResult(
            ok=False,
            latency_ms=elapsed,
            error="timed out" if is_timeout(exc) else "could not connect",
        )
    finally:
        await upstream.close_transports()
    elapsed = int((time.perf_counter() - started) * 1000)
    if response.status_code >= 400:
        error = adapter.error_body(raw).get("error") or {}
        return CheckResult(
            ok=False,
            latency_ms=elapsed,
            status=response.status_code,
            error=str(error.get("message") or "")[:200],
        )
    return CheckResult(ok=True, latency_ms=elapsed, status=response.status_code)


def channel_check(channel: Channel, key: UpstreamKey | None = None) -> CheckResult:
    """Send one tiny request through `channel` (with `key`, or its first)."""
    keys = [key] if key else list(channel.upstream_keys.filter(is_enabled=True)[:1])
    info = channel_info(channel, keys)
    model = channel.model_names[0] if channel.model_names else ""
    payload = {"model": info.upstream_model(model), "messages": PING, "max_tokens": 1}
    return asyncio.run(_check(info, payload))


def disabled_keys_probe() -> list[tuple[UpstreamKey, CheckResult]]:
    """
    Probe every key the relay disabled itself and put back in rotation those
    the upstream accepts again. Keys staff disabled are left alone.
    """
    results = []
    for key in UpstreamKey.objects.filter(
        auto_disabled=True, is_enabled=False, channel__is_enabled=True
    ).select_related("channel"):
        result = channel_check(key.channel, key)
        if result.ok:
            UpstreamKey.objects.filter(pk=key.pk).update(
                is_enabled=True,
                auto_disabled=False,
                disabled_reason="",
                disabled_at=None,
            )
        results.append((key, result))
    return results
