"""
Responses API answers an upstream stored: a follow-up (previous_response_id)
and GET / DELETE /v1/responses/{id} (with /cancel and /input_items) must
reach the channel and upstream key that made the answer, because the
upstream keeps it for that account only. The usage record of the request
that made it says which, and whose: a tenant reaches only its own.
"""

import logging
from dataclasses import dataclass, replace

import httpx
import orjson
from django.http import HttpResponse

from accounts.auth import KeyIdentity
from config.db import run_db
from relay import bridge, catalog, endpoints, errors, upstream
from relay.catalog import ChannelInfo
from relay.models import UsageRecord
from relay.providers import adapter_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Origin:
    channel_id: int
    key_id: int | None
    model: str


def _origin(tenant_id: int, response_id: str) -> Origin | None:
    row = (
        UsageRecord.objects.filter(tenant_id=tenant_id, response_id=response_id)
        .exclude(channel_id=None)
        .values_list("channel_id", "upstream_key_id", "model")
        .first()
    )
    return Origin(*row) if row else None


async def response_origin(*, tenant_id: int, response_id: str) -> Origin | None:
    """Return where the tenant's stored answer `response_id` was made."""
    if not isinstance(response_id, str) or len(response_id) > 100:
        return None
    return await run_db(_origin, tenant_id, response_id)


def not_found(response_id: str, param: str | None = None) -> errors.RelayError:
    return errors.RelayError(
        404,
        f"Response with id '{response_id}' not found.",
        code="previous_response_not_found" if param else "response_not_found",
        param=param,
    )


@dataclass(frozen=True, slots=True)
class Holder:
    """The channel holding a stored answer, with only the upstream key that
    made it (all its keys if that one is gone)."""

    channel: ChannelInfo
    # Served by translation: nothing was stored upstream.
    translated: bool
    # The public model name the answer was made for.
    model: str


async def holder(
    identity: KeyIdentity, response_id: str, *, param: str | None = None
) -> Holder:
    """
    Return where the tenant's answer `response_id` is stored. Another
    tenant's answer is not found, exactly like one that never was.
    """
    origin = await response_origin(
        tenant_id=identity.tenant_id, response_id=response_id
    )
    snapshot = await catalog.current()
    channel = snapshot.by_id.get(origin.channel_id) if origin else None
    if channel is None:
        raise not_found(response_id, param)
    found = bridge.route(endpoints.RESPONSES, channel)
    pinned = tuple(key for key in channel.api_keys if key[0] == origin.key_id)
    return Holder(
        channel=replace(channel, api_keys=pinned or channel.api_keys),
        translated=found is None or found.bridged,
        model=origin.model,
    )


# The stored-response operations: (method, path suffix) -> query parameters
# passed on.
OPERATIONS = {
    # `stream` is not passed on: a stored answer is returned whole.
    ("GET", ""): ("include", "include[]"),
    ("DELETE", ""): (),
    ("POST", "/cancel"): (),
    ("GET", "/input_items"): (
        "after",
        "before",
        "include",
        "include[]",
        "limit",
        "order",
    ),
}


async def stored_response(
    identity: KeyIdentity, response_id: str, method: str, suffix: str, query
) -> HttpResponse:
    """Pass one stored-response operation to the upstream that holds it."""
    found = await holder(identity, response_id)
    channel = found.channel
    if found.translated:
        raise errors.RelayError(
            404,
            f"Response with id '{response_id}' was not stored: it was served by "
            "a channel translated from another provider's format, which keeps "
            "no state between requests.",
            code="response_not_stored",
        )
    adapter = adapter_for(channel.kind)
    key_id, secret = channel.api_keys[0]
    attempt = channel.with_key(key_id, secret)
    params = [
        (name, value)
        for name in OPERATIONS[(method, suffix)]
        for value in query.getlist(name)
    ]
    request = adapter.resource_request(
        attempt, method, f"/responses/{response_id}{suffix}", params
    )
    try:
        response = await upstream.send(
            request,
            adapter.transport(),
            upstream.timeout(channel.connect_timeout, channel.read_timeout),
        )
        raw = await response.aread()
        await response.aclose()
    except httpx.HTTPError:
        raise errors.upstream_unavailable() from None
    if response.status_code >= 500 or response.status_code in upstream.KEY_STATUSES:
        # The upstream refused the channel's key, not the customer's.
        logger.warning(
            "channel %s answered %s for a stored response",
            channel.name,
            response.status_code,
        )
        raise errors.upstream_unavailable()
    if response.status_code >= 400:
        raise errors.from_upstream(
            response.status_code, adapter.error_body(raw), attempt
        )
    if channel.upstream_model(found.model) != found.model:
        raw = _renamed(raw, found.model)
    return HttpResponse(raw, content_type="application/json")


def _renamed(raw: bytes, model: str) -> bytes:
    """Answer with the public model name, not the channel's mapping."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    if not isinstance(body, dict) or body.get("object") != "response":
        return raw
    return orjson.dumps({**body, "model": model})
