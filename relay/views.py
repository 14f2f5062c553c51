"""The OpenAI-compatible /v1 endpoints."""

import logging
from functools import wraps

import orjson
from django.http import HttpResponse

from config.db import CONNECTION_ERRORS
from ops.metrics import POSTGRES_ERRORS
from relay import (
    auto,
    catalog,
    counting,
    endpoints,
    errors,
    intake,
    proxy,
    refusals,
    stored,
)
from relay.metering import new_request_id

logger = logging.getLogger(__name__)


def openai_endpoint(method: str | None, *, anthropic: bool = False):
    """
    Give the view a request id and turn every refusal into OpenAI's error
    shape (Anthropic's with `anthropic`).
    """

    def decorate(view):
        @wraps(view)
        async def wrapper(request, *args, **kwargs):
            request_id = new_request_id()
            if method is not None and request.method != method:
                response = errors.RelayError(
                    405, f"Use {method} for this endpoint.", code="method_not_allowed"
                ).response(request_id, anthropic=anthropic)
                response["allow"] = method
                return response
            try:
                response = await view(request, request_id, *args, **kwargs)
            except errors.RelayError as exc:
                refusals.count(request, exc)  # by its key, if identified
                return exc.response(request_id, anthropic=anthropic)
            except CONNECTION_ERRORS:
                POSTGRES_ERRORS.labels(component="relay").inc()
                logger.warning("database unreachable: 503 (%s)", request_id)
                return errors.service_unavailable().response(
                    request_id, anthropic=anthropic
                )
            except Exception:
                logger.exception("relay failure (%s)", request_id)
                return errors.RelayError(
                    500,
                    "The server had an error processing your request.",
                    type="server_error",
                ).response(request_id, anthropic=anthropic)
            response["x-request-id"] = request_id
            return response

        return wrapper

    return decorate


@openai_endpoint("POST")
async def chat_completions(request, request_id):
    return await proxy.relay(request, request_id, endpoints.CHAT_COMPLETIONS)


@openai_endpoint("POST")
async def completions(request, request_id):
    return await proxy.relay(request, request_id, endpoints.COMPLETIONS)


@openai_endpoint("POST")
async def embeddings(request, request_id):
    return await proxy.relay(request, request_id, endpoints.EMBEDDINGS)


@openai_endpoint("POST")
async def images_generations(request, request_id):
    return await proxy.relay(request, request_id, endpoints.IMAGES_GENERATIONS)


@openai_endpoint("POST", anthropic=True)
async def messages(request, request_id):
    return await proxy.relay(request, request_id, endpoints.MESSAGES)


@openai_endpoint("POST")
async def responses(request, request_id):
    return await proxy.relay(request, request_id, endpoints.RESPONSES)


@openai_endpoint(None)
async def response_resource(request, request_id, response_id, suffix=""):
    """GET or DELETE a stored response; POST .../cancel; GET .../input_items."""
    allowed = [method for method, path in stored.OPERATIONS if path == suffix]
    if request.method not in allowed:
        response = errors.RelayError(
            405, f"Use {' or '.join(allowed)} here.", code="method_not_allowed"
        ).response(request_id)
        response["allow"] = ", ".join(allowed)
        return response
    identity = await intake.authenticate(request)
    return await stored.stored_response(
        identity, response_id, request.method, suffix, request.GET
    )


@openai_endpoint("POST", anthropic=True)
async def count_tokens(request, request_id):
    identity = await intake.authenticate(request)
    payload = intake.json_body(request)
    headers = intake.forwarded_headers(request, endpoints.MESSAGES)
    counted = await counting.message_tokens(identity, payload, headers)
    return HttpResponse(counted, content_type="application/json")


@openai_endpoint("GET")
async def models(request, request_id):
    identity = await intake.authenticate(request)
    snapshot = await catalog.current()
    names = snapshot.servable()
    if identity.allowed_models:
        names = [name for name in names if name in identity.allowed_models]
    data = [
        {
            "id": name,
            "object": "model",
            "created": snapshot.models[name].created,
            "owned_by": "switchboard",
        }
        for name in names
    ]
    data[:0] = auto.listed(identity, snapshot)  # the model "auto", if usable
    return HttpResponse(
        orjson.dumps({"object": "list", "data": data}), content_type="application/json"
    )


@openai_endpoint(None)
async def unknown_endpoint(request, request_id):
    raise errors.RelayError(
        404, f"Unknown endpoint {request.path}.", code="unknown_endpoint"
    )
