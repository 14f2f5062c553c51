"""
Anthropic's token counting, POST /v1/messages/count_tokens: never charged
and never held. A Claude model on an Anthropic channel is counted by
Anthropic; any other model with the local tokenizer, after the checks that
/v1/messages would make of the same body.
"""

import logging

import httpx
import orjson

from accounts.auth import KeyIdentity
from relay import bridge, catalog, endpoints, errors, intake, limits, tokens, upstream
from relay.catalog import ChannelInfo
from relay.providers import adapter_for

logger = logging.getLogger(__name__)


async def message_tokens(identity: KeyIdentity, payload: dict, headers: dict) -> bytes:
    """Return `{"input_tokens": N}` for a Messages API body, or refuse it."""
    snapshot = await catalog.current()
    model, routes = intake.priced_model(identity, payload, endpoints.MESSAGES, snapshot)
    endpoints.MESSAGES.validate({"max_tokens": 1, **payload})
    # A count is a request like any other for the key's per-minute limit.
    await limits.admit(identity, 0)
    native = [
        channel
        for channel in snapshot.channels[model.name]
        if channel.id in routes and not routes[channel.id].bridged
    ]
    for channel in native:
        counted = await _upstream_count(channel, payload, headers)
        if counted is not None:
            return counted
    # What the translation refuses, /v1/messages would refuse: so here.
    bridge.BRIDGES["messages"].to_chat({"max_tokens": 1, **payload}, model)
    await tokens.loaded()
    counted = endpoints.MESSAGES.prompt_tokens(payload, tokens.count)
    return orjson.dumps({"input_tokens": counted})


async def _upstream_count(
    channel: ChannelInfo, payload: dict, headers: dict
) -> bytes | None:
    """Return the upstream's count, or None when it cannot give one."""
    adapter = adapter_for(channel.kind)
    key_id, secret = channel.api_keys[0]
    attempt = channel.with_key(key_id, secret)
    body = {**payload, "model": channel.upstream_model(payload["model"])}
    try:
        response = await upstream.send(
            adapter.count_tokens_request(attempt, body, headers),
            adapter.transport(),
            upstream.timeout(channel.connect_timeout, channel.read_timeout),
        )
        raw = await response.aread()
        await response.aclose()
    except httpx.HTTPError:
        logger.warning("count_tokens failed on channel %s", channel.name)
        return None
    if response.status_code >= 500 or response.status_code in upstream.KEY_STATUSES:
        return None
    if response.status_code >= 400:
        raise errors.from_upstream(
            response.status_code, adapter.error_body(raw), attempt
        )
    return raw
