"""
Idempotency-Key on the metered POST /v1 endpoints: a client that retries a
request it never saw answered gets the first answer, not a second charge.

The first request with a key claims it (an in-flight IdempotencyRecord,
unique per tenant and key) before it holds any money. Answered, the record
keeps the answer, its status, the headers that describe it and its body (a
stream's events as they were sent), for IDEMPOTENCY_TTL; a repeat with the
same key and the same body (the path and the body's bytes, hashed) is
answered from it without reaching the upstream or the wallet. A repeat
while the first is in flight gets 409 idempotency_key_in_use; the same key
with another body gets 422 idempotency_key_reused. A request refused or
failed before its answer (4xx, 5xx, a client that left) gives its key back:
nothing was charged, so retrying it runs it again.

The records live in PostgreSQL only. They are the record of truth that a
request was charged, so they must survive a Redis restart; only requests
that carry the header pay for them (a claim and an answer: two statements),
and a Redis copy in front would add a second store to keep consistent for
no saving on the first statement, which must be atomic across processes
anyway.

Answers larger than MAX_STORED_BYTES are not stored: a whole answer says so
in `x-switchboard-idempotency`, and a repeat of it runs again. A stream is
stored only once it reached its format's normal end.
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone

from accounts.auth import KeyIdentity
from config.api_handler import ApiRequest
from config.db import run_db
from relay import errors
from relay.background import spawn
from relay.models import IdempotencyRecord
from relay.recording import recorded

logger = logging.getLogger(__name__)

REQUEST_HEADER = "idempotency-key"
HEADER = "x-switchboard-idempotency"
REPLAYED_FROM = "x-switchboard-replayed-from"
MAX_KEY_LENGTH = 255
IDEMPOTENCY_TTL = timedelta(hours=24)
# A claim whose request never ended (its process died) lapses after this,
# so that the key can be used again.
IN_FLIGHT_LAPSE = timedelta(minutes=15)
MAX_STORED_BYTES = 1024 * 1024
# The headers of an answer that a replay repeats: what describes the body
# and what it cost, not the key's counters of the moment.
KEPT_HEADERS = (
    "content-type",
    "cache-control",
    "x-switchboard-cost",
    "x-switchboard-charged",
)

State = IdempotencyRecord.State


@dataclass(slots=True)
class Claim:
    """A request's claim on its Idempotency-Key."""

    record_id: int
    request_id: str


class Replay(Exception):
    """A repeat answered from the stored answer."""

    def __init__(self, answer: HttpResponse):
        super().__init__("replayed")
        self.answer = answer


def fingerprint(request: ApiRequest) -> str | None:
    """The path and body hashed; None for a body too large to read (the
    request is refused with 413 right after)."""
    try:
        body = request.body
    except RequestDataTooBig:
        return None
    digest = hashlib.sha256(request.path.encode())
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


def _key_of(request: ApiRequest) -> str | None:
    key = request.headers.get(REQUEST_HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise errors.bad_request(
            f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable "
            "characters."
        )
    return key


async def begin(
    request: ApiRequest, identity: KeyIdentity, request_id: str
) -> Claim | None:
    """
    Claim the request's Idempotency-Key for its tenant (None without the
    header), or raise Replay with the stored answer, or refuse with 409 or
    422.
    """
    key = _key_of(request)
    if key is None:
        return None
    hashed = fingerprint(request)
    if hashed is None:
        return None
    outcome, found = await run_db(_claim, identity.tenant_id, key, hashed, request_id)
    if outcome == "claimed":
        return Claim(found, request_id)
    if outcome == "reused":
        raise errors.RelayError(
            422,
            "This Idempotency-Key was already used with a different request "
            "body. Use a new key for a new request.",
            code="idempotency_key_reused",
        )
    if outcome == "in_flight":
        raise errors.RelayError(
            409,
            "A request with this Idempotency-Key is still in progress. Retry "
            "once it has been answered.",
            code="idempotency_key_in_use",
            headers={"retry-after": "1"},
        )
    raise Replay(_replay(found))


def _claim(tenant_id: int, key: str, fingerprint: str, request_id: str):
    """Return ("claimed", record id), ("reused" | "in_flight", None), or
    ("done", the record)."""
    now = timezone.now()
    fresh = {
        "fingerprint": fingerprint,
        "state": State.IN_FLIGHT,
        "request_id": request_id,
        "status": None,
        "headers": {},
        "body": b"",
        "stream": False,
        "created_at": now,
        "expires_at": now + IN_FLIGHT_LAPSE,
    }
    with transaction.atomic():
        found = (
            IdempotencyRecord.objects.select_for_update()
            .filter(tenant_id=tenant_id, key=key)
            .first()
        )
        if found is None:
            try:
                with transaction.atomic():
                    created = IdempotencyRecord.objects.create(
                        tenant_id=tenant_id, key=key, **fresh
                    )
            except IntegrityError:
                # Another request with the key claimed it meanwhile.
                return "in_flight", None
            return "claimed", created.pk
        if found.expires_at <= now:
            IdempotencyRecord.objects.filter(pk=found.pk).update(**fresh)
            return "claimed", found.pk
        if found.fingerprint != fingerprint:
            return "reused", None
        if found.state == State.IN_FLIGHT:
            return "in_flight", None
        return "done", found


def _replay(record: IdempotencyRecord) -> HttpResponse:
    body = bytes(record.body)
    if record.stream:
        # The events as they were sent, in one piece.
        answer = StreamingHttpResponse(_once(body), status=record.status)
    else:
        answer = HttpResponse(body, status=record.status)
    for name, value in record.headers.items():
        answer[name] = value
    answer[HEADER] = "replayed"
    answer[REPLAYED_FROM] = record.request_id
    return answer


async def _once(body: bytes):
    yield body


def _kept_headers(answer: HttpResponse) -> dict[str, str]:
    return {name: answer[name] for name in KEPT_HEADERS if name in answer}


async def finish(claim: Claim | None, answer: HttpResponse) -> None:
    """Store a whole answer for its repeats, or give the key back if it is
    too large to keep (and say so on the answer)."""
    if claim is None:
        return
    body = answer.content
    if len(body) > MAX_STORED_BYTES:
        answer[HEADER] = f"not-stored; larger than {MAX_STORED_BYTES} bytes"
        await abandon(claim)
        return
    await run_db(
        _store, claim, answer.status_code, _kept_headers(answer), body, stream=False
    )
    answer[HEADER] = "stored"


def recording(claim: Claim, answer: StreamingHttpResponse, content):
    """Return `content` (a stream's events) passed through and kept, to be
    stored once the stream has ended as served."""
    headers = _kept_headers(answer)
    answer[HEADER] = "stored-when-complete"
    status = answer.status_code
    return recorded(
        content,
        MAX_STORED_BYTES,
        lambda body: spawn(run_db(_store, claim, status, headers, body, stream=True)),
    )


def _store(
    claim: Claim, status: int, headers: dict, body: bytes, *, stream: bool
) -> None:
    now = timezone.now()
    IdempotencyRecord.objects.filter(
        pk=claim.record_id, request_id=claim.request_id
    ).update(
        state=State.DONE,
        status=status,
        headers=headers,
        body=body,
        stream=stream,
        expires_at=now + IDEMPOTENCY_TTL,
    )


async def abandon(claim: Claim | None) -> None:
    """Give the key back: the request ended without an answer to keep."""
    if claim is not None:
        await run_db(_forget, claim)


def _forget(claim: Claim) -> None:
    IdempotencyRecord.objects.filter(
        pk=claim.record_id, request_id=claim.request_id, state=State.IN_FLIGHT
    ).delete()


def purge_expired(*, now=None, batch: int = 10_000) -> int:
    """Delete records past their expiry, `batch` at a time; return how many."""
    now = now or timezone.now()
    total = 0
    while True:
        expired = IdempotencyRecord.objects.filter(expires_at__lte=now)
        chosen = list(expired.values_list("pk", flat=True)[:batch])
        deleted, _ = IdempotencyRecord.objects.filter(pk__in=chosen).delete()
        total += deleted
        if len(chosen) < batch:
            return total
