"""
ASGI entry point.

/v1 and the operator's endpoints (/healthz, /readyz, /metrics) are served by
config.api_handler: the request read from the scope, the view found by a
dict lookup, its response written as ASGI messages; no middleware, none of
Django's per-request machinery (bench/README.md has the measurements).
Every other path gets Django's full stack.
"""

import gc
import logging
import os
import time
from functools import partial

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup(set_prefix=False)

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402

from accounts.keys import KEY_PREFIX, display_prefix  # noqa: E402
from billing import workers  # noqa: E402
from config import api_handler  # noqa: E402
from config.db import close_async_pool  # noqa: E402
from ops import requestlog  # noqa: E402
from ops import views as ops_views  # noqa: E402
from relay import concurrency, errors, refusals, response_cache  # noqa: E402
from relay import urls as relay_urls  # noqa: E402
from relay.background import drain  # noqa: E402
from relay.breakers import close_breakers  # noqa: E402
from relay.intake import api_key_from  # noqa: E402
from relay.limits import close_counters  # noqa: E402
from relay.upstream import close_transports  # noqa: E402

logger = logging.getLogger(__name__)
# No Host check on these (probes and scrapers address a worker by its IP).
OPERATOR_VIEWS = {
    "/healthz": ops_views.healthz,
    "/readyz": ops_views.readyz,
    "/metrics": ops_views.metrics,
}


def _timed_out(limit: float):
    return errors.RelayError(
        408,
        f"The request body was not received within {limit:g} seconds.",
        code="request_timeout",
    ).response()


async def serve_v1(scope, receive, send) -> None:
    path = scope["path"]
    view, kwargs = relay_urls.resolve(path)
    # What the metrics and the request log see of it (ops.requestlog):
    # finished once the response is sent or the client has left.
    trace = requestlog.Trace(time.perf_counter(), requestlog.endpoint_of(path))
    trace.path = path
    token = requestlog.current.set(trace)
    try:
        status = await api_handler.serve(
            scope,
            receive,
            send,
            view,
            kwargs,
            responded=partial(_responded, trace),
            refused=_timed_out,
        )
        if status is not None:
            trace.status = status
    finally:
        requestlog.current.reset(token)
        try:
            requestlog.finish(trace)
        except Exception:
            logger.exception("could not record request %s", trace.request_id)


def _responded(trace, request, response) -> None:
    trace.status = response.status_code
    if requestlog.logging_on():
        trace.request_id = trace.request_id or response.get("x-request-id", "")
        secret = api_key_from(request)
        if secret.startswith(KEY_PREFIX):
            trace.key_prefix = display_prefix(secret)


_site = ASGIStaticFilesHandler(ASGIHandler())


async def application(scope, receive, send):
    if scope["type"] == "http":
        path = scope["path"]
        if path.startswith("/v1/"):
            await serve_v1(scope, receive, send)
        elif path in OPERATOR_VIEWS:
            await api_handler.serve(scope, receive, send, OPERATOR_VIEWS[path], {})
        else:
            await _site(scope, receive, send)
    elif scope["type"] == "lifespan":
        await _lifespan(receive, send)
    else:
        await _site(scope, receive, send)


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # Heartbeat, dead workers' holds, journaled settlements.
            workers.ensure_running()
            # What start-up made (modules, settings, the catalog's classes)
            # lives as long as the process: out of the collector's way, so
            # that its full collections walk only what requests made, and
            # open streams do not stall on them.
            gc.freeze()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await drain()
            await workers.stop()
            await close_transports()
            await close_async_pool()
            await close_breakers()
            await close_counters()
            await concurrency.close_slots()
            await response_cache.close_store()
            await refusals.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return
