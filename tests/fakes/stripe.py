"""Fake Stripe API served over real HTTP, and signed webhooks built locally.

The official ``stripe`` SDK talks to it exactly as to api.stripe.com (point
``STRIPE_API_BASE`` at ``base_url``): form-encoded requests with bracketed
keys (``line_items[0][price_data][unit_amount]=1000``), a bearer secret key,
idempotency keys, Stripe-shaped errors ``{"error": {"type", "message", ...}}``.
It serves what Switchboard uses:

* ``POST /v1/checkout/sessions``: a session in ``status: open``,
  ``payment_status: unpaid``, with an ``id`` ``cs_test_...`` and a hosted
  ``url``; the same ``Idempotency-Key`` returns the same session. Without
  ``payment_method_types`` the session offers the account's enabled methods
  (``payment_methods``: card, Alipay and WeChat Pay unless a test changes
  it), and one offering WeChat Pay is refused without
  ``payment_method_options[wechat_pay][client]``, as Stripe refuses it;
* ``GET /v1/checkout/sessions``: newest first, ``created[gte]``/``[lte]``,
  ``payment_intent``, ``status``, ``limit`` (1-100) and ``starting_after``
  pagination with ``has_more``;
* ``GET /v1/checkout/sessions/{id}``.

``fail_next(count)`` makes the next `count` API requests fail as during a
Stripe outage (503, ``api_error``, with ``Stripe-Should-Retry: false`` so
the SDK gives up at once and each failure is one failed call); ``failures``
says how many are still to come.

Tests play the customer and Stripe's back office with the controls
(``complete``, ``async_succeed``, ``async_fail``, ``expire``) and turn the
result into webhook deliveries with ``event``, ``charge_refunded`` and
``dispute_created``; ``sign`` computes the ``Stripe-Signature`` header with
Stripe's scheme (``t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<payload>">``),
independently of the SDK that verifies it.

The module is also a pytest plugin, registered by tests/conftest.py,
with the fixtures ``fake_stripe`` (one server per session, reset per test)
and ``stripe_settings`` (Switchboard's Stripe settings pointed at it).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from tests.fakes.asgi import read_body
from tests.servers import LoopbackFake, ThreadedServer

API_KEY = "sk_test_switchboard_fake"
WEBHOOK_SECRET = "whsec_test_switchboard_fake"
API_VERSION = "2026-10-28.endive"
SESSIONS_PATH = "/v1/checkout/sessions"
SESSION_TTL_SECONDS = 24 * 3600
# What the fake account has turned on in its dashboard.
ENABLED_PAYMENT_METHODS = ("card", "alipay", "wechat_pay")
WECHAT_PAY_CLIENTS = ("web", "ios", "android")
_counter = itertools.count(1)
_BRACKETS = re.compile(r"\[([^\]]*)\]")


def _stripe_id(prefix: str) -> str:
    # Real ids are a prefix and ~24-58 base62 characters.
    return f"{prefix}_{secrets.token_urlsafe(24).replace('-', 'a').replace('_', 'b')}"


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Decode Stripe's bracketed form keys into nested dicts and lists:
    ``a[0][b]=1`` -> ``{"a": [{"b": "1"}]}``."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head = key.split("[", 1)[0]
        path = [head, *_BRACKETS.findall(key[len(head) :])]
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {key: _listify(value) for key, value in node.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def stripe_error(
    status: int, message: str, *, code: str = "", param: str = ""
) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "api_error"
    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return {"error": error}


class StripeRefusal(Exception):
    def __init__(self, status: int, message: str, **details: str) -> None:
        super().__init__(message)
        self.status, self.body = status, stripe_error(status, message, **details)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]


def _int_param(params: dict, name: str, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise StripeRefusal(400, f"Invalid integer: {raw}", param=name) from None


def _payment_methods(params: dict[str, Any], enabled: tuple[str, ...]) -> list[str]:
    """The methods a session offers: those asked for, else the account's."""
    asked = params.get("payment_method_types")
    if asked is not None and (not isinstance(asked, list) or not asked):
        raise StripeRefusal(400, "Invalid array", param="payment_method_types")
    methods = list(asked or enabled)
    options = params.get("payment_method_options") or {}
    wechat = options.get("wechat_pay") if isinstance(options, dict) else None
    client = wechat.get("client") if isinstance(wechat, dict) else None
    if "wechat_pay" in methods and client not in WECHAT_PAY_CLIENTS:
        raise StripeRefusal(
            400,
            "payment_method_options[wechat_pay][client] is required when "
            "WeChat Pay is a payment method.",
            param="payment_method_options[wechat_pay][client]",
        )
    return methods


def _new_session(
    params: dict[str, Any], now: int, enabled: tuple[str, ...] = ENABLED_PAYMENT_METHODS
) -> dict[str, Any]:
    """Validate a creation request like Stripe does and build the session."""
    if params.get("mode") != "payment":
        raise StripeRefusal(400, "This fake only serves mode=payment.", param="mode")
    if not params.get("success_url"):
        raise StripeRefusal(
            400, "Missing required param: success_url.", param="success_url"
        )
    items = params.get("line_items")
    if not isinstance(items, list) or not items:
        raise StripeRefusal(
            400, "Missing required param: line_items.", param="line_items"
        )
    total, currencies = 0, set()
    for index, item in enumerate(items):
        price = item.get("price_data") or {}
        unit = _int_param(price, "unit_amount")
        quantity = _int_param(item, "quantity")
        product = price.get("product_data") or {}
        if unit is None or unit < 0 or not price.get("currency"):
            raise StripeRefusal(
                400,
                "Each line item needs price_data[currency] and [unit_amount].",
                param=f"line_items[{index}][price_data]",
            )
        if quantity is None or quantity < 1:
            raise StripeRefusal(
                400, "Missing quantity.", param=f"line_items[{index}][quantity]"
            )
        if not product.get("name"):
            raise StripeRefusal(
                400,
                "Missing required param: product_data[name].",
                param=f"line_items[{index}][price_data][product_data][name]",
            )
        total += unit * quantity
        currencies.add(price["currency"].lower())
    if len(currencies) != 1:
        raise StripeRefusal(400, "All line items must use one currency.")
    if total < 50:
        raise StripeRefusal(
            400, "The amount must be at least $0.50 usd.", code="amount_too_small"
        )
    methods = _payment_methods(params, enabled)
    session_id = _stripe_id("cs_test")
    metadata = params.get("metadata") or {}
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": total,
        "amount_total": total,
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "created": now,
        "currency": currencies.pop(),
        "customer": None,
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "expires_at": now + SESSION_TTL_SECONDS,
        "livemode": False,
        "metadata": dict(metadata),
        "mode": "payment",
        "payment_intent": None,
        "payment_method_options": copy.deepcopy(
            params.get("payment_method_options") or {}
        ),
        "payment_method_types": methods,
        "payment_status": "unpaid",
        "status": "open",
        "success_url": params["success_url"],
        "ui_mode": "hosted_page",
        "url": f"https://checkout.stripe.com/c/pay/{session_id}#fake",
        # Not a Stripe field: what payment_intent_data asked for, kept so
        # charges and disputes built from this session can carry it.
        "_payment_intent_data": params.get("payment_intent_data") or {},
    }


def _public(session: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in session.items() if not k.startswith("_")}


class FakeStripe(LoopbackFake):
    """The fake API: an ASGI app served by a uvicorn thread on loopback."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.api_key = API_KEY
        self.webhook_secret = WEBHOOK_SECRET
        self._lock = threading.Lock()
        self._sessions: dict[str, dict[str, Any]] = {}
        self._idempotent: dict[str, str] = {}
        self._requests: list[RecordedRequest] = []
        self._failures = 0
        self._server: ThreadedServer | None = None
        # The account's enabled payment methods (its dashboard settings).
        self.payment_methods = ENABLED_PAYMENT_METHODS

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeStripe is not started")
        return self._server.base_url

    def reset(self) -> None:
        with self._lock:
            self._sessions.clear()
            self._idempotent.clear()
            self._requests.clear()
            self._failures = 0
            self.payment_methods = ENABLED_PAYMENT_METHODS

    def fail_next(self, count: int) -> None:
        """Answer the next `count` API requests with a 503, as Stripe does
        during an outage."""
        with self._lock:
            self._failures = count

    @property
    def failures(self) -> int:
        with self._lock:
            return self._failures

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    # -- the customer and Stripe's back office ------------------------------

    def session(self, session_id: str) -> dict[str, Any]:
        """Return a copy of a session as the API would show it."""
        with self._lock:
            return _public(self._sessions[session_id])

    def sessions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [_public(s) for s in self._sessions.values()]

    def _change(self, session_id: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            session = self._sessions[session_id]
            session.update(fields)
            return _public(session)

    def complete(self, session_id: str, *, paid: bool = True) -> dict[str, Any]:
        """The customer finishes Checkout: paid by card, or (``paid=False``)
        with a delayed method such as a bank debit, still unpaid."""
        with self._lock:
            session = self._sessions[session_id]
            if session["status"] != "open":
                raise ValueError(f"{session_id} is {session['status']}, not open")
        return self._change(
            session_id,
            status="complete",
            payment_status="paid" if paid else "unpaid",
            payment_intent=_stripe_id("pi"),
            customer_details={"email": session.get("customer_email")},
        )

    def async_succeed(self, session_id: str) -> dict[str, Any]:
        return self._change(session_id, payment_status="paid")

    def async_fail(self, session_id: str) -> dict[str, Any]:
        return self._change(session_id, payment_status="unpaid")

    def expire(self, session_id: str) -> dict[str, Any]:
        return self._change(session_id, status="expired", url=None)

    def backdate(self, session_id: str, seconds: int) -> dict[str, Any]:
        """Move a session's creation time `seconds` into the past."""
        with self._lock:
            created = self._sessions[session_id]["created"] - seconds
        return self._change(session_id, created=created)

    # -- webhooks --------------------------------------------------------------

    def event(self, type_: str, obj: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """Return a webhook event (snapshot payload) carrying `obj`."""
        return {
            "id": _stripe_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": obj, **extra},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
        }

    def session_event(self, type_: str, session_id: str) -> dict[str, Any]:
        """An event about a session as it stands now, e.g.
        ``checkout.session.completed``."""
        return self.event(type_, self.session(session_id))

    def _charge_basics(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            session = self._sessions[session_id]
            if not session["payment_intent"]:
                raise ValueError(f"{session_id} has no payment yet")
            charge_id = session.setdefault("_charge", _stripe_id("ch"))
            metadata = dict(session["_payment_intent_data"].get("metadata") or {})
            return {
                "charge": charge_id,
                "amount": session["amount_total"],
                "currency": session["currency"],
                "payment_intent": session["payment_intent"],
                "metadata": metadata,
            }

    def charge_refunded(self, session_id: str, amount_refunded: int) -> dict[str, Any]:
        """A ``charge.refunded`` event: `amount_refunded` is the charge's
        cumulative refunded amount in cents, as Stripe reports it."""
        basics = self._charge_basics(session_id)
        charge = {
            "id": basics["charge"],
            "object": "charge",
            "amount": basics["amount"],
            "amount_captured": basics["amount"],
            "amount_refunded": amount_refunded,
            "captured": True,
            "currency": basics["currency"],
            "livemode": False,
            "metadata": basics["metadata"],
            "paid": True,
            "payment_intent": basics["payment_intent"],
            "refunded": amount_refunded >= basics["amount"],
            "status": "succeeded",
        }
        return self.event("charge.refunded", charge)

    def dispute_created(self, session_id: str, amount: int | None = None) -> dict:
        """A ``charge.dispute.created`` event for the session's charge."""
        basics = self._charge_basics(session_id)
        dispute = {
            "id": _stripe_id("dp"),
            "object": "dispute",
            "amount": basics["amount"] if amount is None else amount,
            "charge": basics["charge"],
            "created": int(time.time()),
            "currency": basics["currency"],
            "livemode": False,
            "metadata": {},
            "payment_intent": basics["payment_intent"],
            "reason": "fraudulent",
            "status": "needs_response",
        }
        return self.event("charge.dispute.created", dispute)

    def dispute_closed(self, created: dict, status: str) -> dict:
        """The ``charge.dispute.closed`` event of the dispute `created` (a
        dispute_created event) with its final `status`: won, lost..."""
        dispute = {**created["data"]["object"], "status": status}
        return self.event("charge.dispute.closed", dispute)

    def sign(
        self, payload: str, *, timestamp: int | None = None, secret: str = ""
    ) -> str:
        """Return the ``Stripe-Signature`` header Stripe would send."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        key = (secret or self.webhook_secret).encode()
        signed = f"{timestamp}.{payload}".encode()
        digest = hmac.new(key, signed, hashlib.sha256).hexdigest()
        return f"t={timestamp},v1={digest}"

    def signed(self, event: dict[str, Any], **sign_options: Any) -> tuple[str, str]:
        """Return an event's JSON body and its signature header."""
        payload = json.dumps(event, indent=2)
        return payload, self.sign(payload, **sign_options)

    # -- the HTTP API ----------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        if raw is None:
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"").decode()
        source = raw.decode() if method == "POST" else query
        params = decode_form(parse_qsl(source, keep_blank_values=True))
        with self._lock:
            self._requests.append(RecordedRequest(method, path, headers, params))
            failing = self._failures > 0
            self._failures -= failing
        if failing:
            body = stripe_error(503, "Stripe is temporarily unavailable (fake outage).")
            await _send_json(send, 503, body, should_retry=False)
            return
        try:
            status, body = self._answer(method, path, headers, params)
        except StripeRefusal as refusal:
            status, body = refusal.status, refusal.body
        await _send_json(send, status, body)

    def _answer(self, method: str, path: str, headers: dict, params: dict):
        if headers.get("authorization") != f"Bearer {self.api_key}":
            raise StripeRefusal(401, "Invalid API Key provided.")
        if path == SESSIONS_PATH and method == "POST":
            return 200, self._create(headers.get("idempotency-key"), params)
        if path == SESSIONS_PATH and method == "GET":
            return 200, self._list(params)
        if path.startswith(SESSIONS_PATH + "/") and method == "GET":
            session_id = path.removeprefix(SESSIONS_PATH + "/")
            with self._lock:
                session = self._sessions.get(session_id)
                if session is not None:
                    return 200, _public(session)
            raise StripeRefusal(
                404,
                f"No such checkout.session: '{session_id}'",
                code="resource_missing",
                param="session",
            )
        raise StripeRefusal(404, f"Unrecognized request URL ({method}: {path}).")

    def _create(self, idempotency_key: str | None, params: dict) -> dict:
        with self._lock:
            if idempotency_key in self._idempotent:
                return _public(self._sessions[self._idempotent[idempotency_key]])
        session = _new_session(params, int(time.time()), tuple(self.payment_methods))
        with self._lock:
            self._sessions[session["id"]] = session
            if idempotency_key:
                self._idempotent[idempotency_key] = session["id"]
            return _public(session)

    def _list(self, params: dict) -> dict:
        limit = _int_param(params, "limit", 10)
        if not 1 <= limit <= 100:
            raise StripeRefusal(400, "limit must be between 1 and 100", param="limit")
        created = params.get("created") or {}
        if not isinstance(created, dict):
            created = {"eq": created}
        gte = _int_param(created, "gte")
        lte = _int_param(created, "lte")
        with self._lock:
            # Newest first, like Stripe; insertion order breaks ties.
            ordered = sorted(
                enumerate(self._sessions.values()),
                key=lambda pair: (pair[1]["created"], pair[0]),
                reverse=True,
            )
            matching = [
                session
                for _, session in ordered
                if (gte is None or session["created"] >= gte)
                and (lte is None or session["created"] <= lte)
                and params.get("payment_intent") in (None, session["payment_intent"])
                and params.get("status") in (None, session["status"])
            ]
            after = params.get("starting_after")
            if after:
                ids = [session["id"] for session in matching]
                if after not in ids:
                    raise StripeRefusal(
                        400,
                        f"No such checkout.session: '{after}'",
                        param="starting_after",
                    )
                matching = matching[ids.index(after) + 1 :]
            page = [_public(session) for session in matching[:limit]]
        return {
            "object": "list",
            "data": page,
            "has_more": len(matching) > limit,
            "url": SESSIONS_PATH,
        }


async def _send_json(
    send, status: int, payload: Any, *, should_retry: bool | None = None
) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"request-id", f"req_fake{next(_counter):08d}".encode()),
        (b"stripe-version", API_VERSION.encode()),
    ]
    if should_retry is not None:
        headers.append((b"stripe-should-retry", str(should_retry).lower().encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(payload)})


@pytest.fixture(scope="session")
def fake_stripe_server():
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_stripe(fake_stripe_server) -> FakeStripe:
    fake_stripe_server.reset()
    yield fake_stripe_server
    fake_stripe_server.reset()


@pytest.fixture
def stripe_settings(settings, fake_stripe, celery_inline):
    """Switchboard's Stripe settings, pointed at the fake."""
    settings.STRIPE_SECRET_KEY = fake_stripe.api_key
    settings.STRIPE_WEBHOOK_SECRET = fake_stripe.webhook_secret
    settings.STRIPE_API_BASE = fake_stripe.base_url
    return settings


@pytest.fixture
def celery_inline():
    """Run queued Celery tasks at once in the test's process, as a worker
    would (even when REDIS_URL would send them to a broker with no worker
    behind it): retries run at once too, and what a task raises ends in its
    result, not in the code that queued it."""
    from config.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


WEBHOOK_PATH = "/billing/stripe/webhook/"


class StripeFlow:
    """Drive a top-up the way production does: checkout_start against the
    fake, the customer paying on the fake, and Stripe's signed webhook
    posted to Switchboard's own view through Django's test client."""

    def __init__(self, fake: FakeStripe, client) -> None:
        self.fake, self.client = fake, client

    def start(self, customer, usd: int = 25):
        from billing.payments import checkout_start

        return checkout_start(
            tenant=customer.tenant,
            user=customer.user,
            amount_cents=usd * 100,
            success_url="https://switchboard.test/billing/topup/success/"
            "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url="https://switchboard.test/billing/topup/cancel/",
        )

    def deliver(self, event: dict, **sign_options):
        """POST `event` signed as Stripe would; return the response."""
        payload, signature = self.fake.signed(event, **sign_options)
        return self.post(payload, signature)

    def post(self, payload: str, signature: str | None):
        headers = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
        return self.client.post(
            WEBHOOK_PATH, data=payload, content_type="application/json", **headers
        )

    def pay(self, customer, usd: int = 25):
        """A complete card top-up: return its Payment, refreshed."""
        payment = self.start(customer, usd)
        self.fake.complete(payment.stripe_session_id)
        event = self.fake.session_event(
            "checkout.session.completed", payment.stripe_session_id
        )
        response = self.deliver(event)
        assert response.status_code == 200, response.content
        payment.refresh_from_db()
        return payment


@pytest.fixture
def stripe_flow(stripe_settings, fake_stripe, client) -> StripeFlow:
    return StripeFlow(fake_stripe, client)
