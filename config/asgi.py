"""
ASGI entry point.

/v1 requests go to APIHandler, a Django handler stripped to what the API
needs: no middleware (the stock middleware is sync code Django would run
through a thread hop each) and none of the per-request thread machinery of
Django's ASGIHandler (a fresh executor thread per request for
ThreadSensitiveContext and the request_started/finished receivers, which only
manage the request thread's database connection; the API does its database
work through config.db). bench/README.md has the measurements. Every
other path gets Django's full stack.
"""

import asyncio
import contextlib
import logging
import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.exceptions import RequestAborted  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.handlers.exception import convert_exception_to_response  # noqa: E402

from accounts.keys import KEY_PREFIX, display_prefix  # noqa: E402
from billing import workers  # noqa: E402
from config.db import close_async_pool  # noqa: E402
from ops import requestlog  # noqa: E402
from relay import errors  # noqa: E402
from relay.background import drain  # noqa: E402
from relay.breakers import close_breakers  # noqa: E402
from relay.intake import api_key_from  # noqa: E402
from relay.limits import close_counters  # noqa: E402
from relay.upstream import close_transports  # noqa: E402

logger = logging.getLogger(__name__)
# Served by APIHandler too: no middleware, no Host check (probes and
# scrapers address a worker by its IP), nothing per request but the view.
OPERATOR_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class BodyTimedOut(Exception):
    """The client did not send its whole request body in time."""

    def __init__(self, limit: float):
        super().__init__(limit)
        error = errors.RelayError(
            408,
            f"The request body was not received within {limit:g} seconds.",
            code="request_timeout",
        )
        self.response = error.response()
        # Whatever of the body comes later would pass for the next request.
        self.response["connection"] = "close"


class APIHandler(ASGIHandler):
    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)

    async def __call__(self, scope, receive, send):
        path = scope["path"]
        if not path.startswith("/v1/"):
            await self.serve(scope, receive, send, None)
            return
        # What the metrics and the request log see of it (ops.requestlog):
        # finished once the response is sent or the client has left.
        trace = requestlog.Trace(time.perf_counter(), requestlog.endpoint_of(path))
        trace.path = path
        token = requestlog.current.set(trace)
        try:
            await self.serve(scope, receive, send, trace)
        finally:
            requestlog.current.reset(token)
            try:
                requestlog.finish(trace)
            except Exception:
                logger.exception("could not record request %s", trace.request_id)

    async def read_body(self, receive):
        """Read the request body, or raise BodyTimedOut once it has taken
        SWITCHBOARD_BODY_READ_TIMEOUT_SECONDS: a client that announces a body
        and never sends it must not hold its connection and task forever."""
        limit = settings.SWITCHBOARD_BODY_READ_TIMEOUT_SECONDS
        try:
            async with asyncio.timeout(limit if limit > 0 else None):
                return await super().read_body(receive)
        except TimeoutError:
            raise BodyTimedOut(limit) from None

    async def serve(self, scope, receive, send, trace):
        try:
            body_file = await self.read_body(receive)
        except BodyTimedOut as timed_out:
            if trace is not None:
                trace.status = timed_out.response.status_code
            await self.send_response(timed_out.response, send)
            return
        except RequestAborted:
            return
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            if trace is not None:
                trace.status = error_response.status_code
            body_file.close()
            await self.send_response(error_response, send)
            return

        async def respond():
            response = await self.get_response_async(request)
            if trace is not None:
                _responded(trace, request, response)
            # The client may leave while the response is being sent.
            with contextlib.suppress(asyncio.CancelledError):
                await self.send_response(response, send)

        # As Django does: a client disconnect cancels the view, which lets a
        # stream stop its upstream call and settle what was produced.
        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        responding = asyncio.create_task(respond())
        try:
            await asyncio.wait(
                [listening, responding], return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (listening, responding):
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RequestAborted):
                    await task
            body_file.close()


def _responded(trace, request, response) -> None:
    trace.status = response.status_code
    if requestlog.logging_on():
        trace.request_id = trace.request_id or response.get("x-request-id", "")
        secret = api_key_from(request)
        if secret.startswith(KEY_PREFIX):
            trace.key_prefix = display_prefix(secret)


_api = APIHandler()
_site = ASGIStaticFilesHandler(ASGIHandler())


async def application(scope, receive, send):
    if scope["type"] == "http" and (
        scope["path"].startswith("/v1/") or scope["path"] in OPERATOR_PATHS
    ):
        await _api(scope, receive, send)
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
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await drain()
            await workers.stop()
            await close_transports()
            await close_async_pool()
            await close_breakers()
            await close_counters()
            await send({"type": "lifespan.shutdown.complete"})
            return
