"""
What every /v1 request passes before the relay does anything for it: its API
key, its JSON body, and a model the key may use on the endpoint asked.
"""

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig

from accounts.auth import KeyIdentity, identify
from accounts.models import ApiKey
from config.api_handler import ApiRequest
from relay import auto, bridge, errors, limits, refusals, validation
from relay.bridge import Route
from relay.catalog import Catalog, ModelInfo
from relay.endpoints import Endpoint

# Longer names are no model's: refused rather than echoed back in full.
MAX_MODEL_NAME = 256


def api_key_from(request: ApiRequest) -> str:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("x-api-key", "").strip()


async def authenticate(request: ApiRequest) -> KeyIdentity:
    secret = api_key_from(request)
    if not secret:
        raise errors.unauthorized(
            "You didn't provide an API key. Send it as 'Authorization: Bearer "
            "sk-sb-...'.",
            code="missing_api_key",
        )
    identity = await identify(secret)
    if identity is None:
        raise errors.unauthorized("Incorrect API key provided.")
    refusals.identified(request, identity)  # its refusals count against it
    status = identity.status
    if status == ApiKey.Status.REVOKED:
        raise errors.unauthorized(
            "This API key has been revoked.", code="api_key_revoked"
        )
    if status == ApiKey.Status.EXPIRED:
        raise errors.unauthorized("This API key has expired.", code="api_key_expired")
    if not identity.tenant_active:
        raise errors.forbidden(
            "This account is suspended. Contact support.", code="account_suspended"
        )
    limits.check_address(identity, request.client)
    return identity


def forwarded_headers(request: ApiRequest, endpoint: Endpoint) -> dict:
    """Return the client's headers that `endpoint` passes to its upstream."""
    return {
        name: request.headers[name]
        for name in endpoint.forwarded_headers
        if name in request.headers
    }


def json_body(request: ApiRequest) -> dict:
    try:
        payload = orjson.loads(request.body)
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raise errors.RelayError(
            413,
            f"The request body is larger than the {limit} bytes accepted.",
            code="request_too_large",
        ) from None
    except orjson.JSONDecodeError:
        raise errors.bad_request(
            "We could not parse the JSON body of your request. Send valid JSON."
        ) from None
    if not isinstance(payload, dict):
        raise errors.bad_request("The request body must be a JSON object.")
    return payload


def priced_model(
    identity: KeyIdentity, payload: dict, endpoint: Endpoint, snapshot: Catalog
) -> tuple[ModelInfo, dict[int, Route]]:
    """Return the requested model and how each channel serving it is reached
    by `endpoint`, or refuse: the request's known fields are checked here,
    against the model's limits (relay.validation)."""
    name = payload.get("model")
    if not isinstance(name, str) or not name:
        raise errors.bad_request("you must provide a model parameter", param="model")
    if len(name) > MAX_MODEL_NAME:
        raise errors.bad_request(
            f"'model' is longer than {MAX_MODEL_NAME} characters.", param="model"
        )
    if name == auto.NAME:  # relay.auto picks a tier, priced here like any model
        return auto.priced(identity, payload, endpoint, snapshot)
    if identity.allowed_models and name not in identity.allowed_models:
        raise errors.forbidden(
            f"This API key is not allowed to use the model `{name}`.",
            code="model_not_allowed",
        )
    model = snapshot.models.get(name)
    if model is not None:
        model = model.current()
    if model is not None and not endpoint.serves(model):
        raise endpoint.unsupported(model)
    served = snapshot.channels.get(name, ())
    if model is None or not served:
        raise errors.model_not_found(name)
    routes = {
        channel.id: found
        for channel in served
        if (found := bridge.route(endpoint, channel)) is not None
    }
    if not routes:
        raise errors.model_not_supported(
            f"The model `{name}` is not served on {endpoint.path_shown}."
        )
    validation.check(endpoint.name, payload, model)
    return model, routes
