"""Refusals in OpenAI's error shape: {"error": {message, type, param, code}}."""

import orjson
from django.http import HttpResponse

from billing.budgets import BudgetExceeded
from billing.money import format_usd
from relay.redaction import redact

# Anthropic's error types by status, for /v1/messages clients.
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    # Idempotency-Key in use, or reused with another body (relay.idempotency).
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class RelayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def anthropic_body(self) -> dict:
        return {
            "type": "error",
            "error": {
                "type": ANTHROPIC_TYPES.get(self.status, "api_error"),
                "message": self.message,
            },
        }

    def response(
        self, request_id: str | None = None, *, anthropic: bool = False
    ) -> HttpResponse:
        body = self.anthropic_body() if anthropic else self.body()
        response = HttpResponse(
            orjson.dumps(body),
            status=self.status,
            content_type="application/json",
        )
        if request_id:
            response["x-request-id"] = request_id
        for name, value in self.headers.items():
            response[name] = value
        return response


def bad_request(message: str, param: str | None = None) -> RelayError:
    return RelayError(400, message, param=param)


def unauthorized(message: str, code: str = "invalid_api_key") -> RelayError:
    return RelayError(401, message, code=code)


def forbidden(message: str, code: str) -> RelayError:
    return RelayError(403, message, type="permission_error", code=code)


def model_not_found(model: str) -> RelayError:
    return RelayError(
        404,
        f"The model `{model}` does not exist or is not served here.",
        code="model_not_found",
        param="model",
    )


def model_not_supported(message: str) -> RelayError:
    return RelayError(404, message, code="model_not_supported", param="model")


def rate_limited(
    message: str,
    *,
    kind: str,
    retry_after: int,
    headers: dict[str, str] | None = None,
) -> RelayError:
    """429 for a key over its own limit; `kind` is "requests" or "tokens",
    `headers` the key's x-ratelimit-* ones."""
    return RelayError(
        429,
        message,
        type=kind,
        code="rate_limit_exceeded",
        headers={**(headers or {}), "retry-after": str(retry_after)},
    )


def upstream_rate_limited(retry_after: int | None) -> RelayError:
    """429 when every upstream tried answered 429; `retry_after`: the
    longest wait they asked for in seconds, if any said."""
    return RelayError(
        429,
        "The upstream provider is rate limiting requests for this model. "
        "Try again shortly.",
        type="rate_limit_error",
        code="upstream_rate_limited",
        headers={} if retry_after is None else {"retry-after": str(retry_after)},
    )


def insufficient_balance(message: str) -> RelayError:
    return RelayError(
        402, message, type="insufficient_quota", code="insufficient_balance"
    )


def budget_exceeded(exceeded: BudgetExceeded) -> RelayError:
    """402 when a budget of the key or its tenant has no room for the
    request's hold: which one, and when it resets (ISO time, UTC)."""
    owner = "this key's" if exceeded.scope == "key" else "the tenant's"
    if exceeded.resets_at is None:
        resets = "It never resets: raise it to go on"
    else:
        resets = "It resets at " + exceeded.resets_at.isoformat().replace("+00:00", "Z")
    return RelayError(
        402,
        f"Budget exceeded: {owner} {exceeded.period} budget of "
        f"{format_usd(exceeded.cap)} has no room left for this request. "
        f"{resets}.",
        type="insufficient_quota",
        code="budget_exceeded",
    )


def upstream_unavailable() -> RelayError:
    return RelayError(
        502,
        "The upstream provider is unavailable. Try again shortly.",
        type="server_error",
        code="upstream_unavailable",
    )


def service_unavailable() -> RelayError:
    """503 while the relay's own database cannot be reached: nothing was held
    or forwarded, so the client may simply retry."""
    return RelayError(
        503,
        "The service is temporarily unavailable. Try again shortly.",
        type="server_error",
        code="service_unavailable",
        headers={"retry-after": "5"},
    )


def upstream_timeout() -> RelayError:
    return RelayError(
        504,
        "The upstream provider did not answer in time.",
        type="server_error",
        code="upstream_timeout",
    )


def from_upstream(status: int, body: dict, channel=None) -> RelayError:
    """Pass an upstream's verdict on the request back in OpenAI's shape, its
    text redacted of secrets and of the host of `channel` (a ChannelInfo):
    the status, type and code pass through as they are."""
    error = body.get("error") or {}

    def text(name: str) -> str | None:
        value = error.get(name)
        return value if isinstance(value, str) and value else None

    message = text("message")
    param = text("param")
    return RelayError(
        status,
        redact(message, channel)
        if message
        else f"The upstream provider refused the request ({status}).",
        type=text("type") or "invalid_request_error",
        code=text("code"),
        param=redact(param, channel) if param else None,
    )
