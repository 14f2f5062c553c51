"""
ASGI entry point.

/v1 requests go to a Django handler with no middleware: the stock middleware
(sessions, CSRF, messages...) is sync code that Django would run through a
thread hop each, and the API needs none of it. Everything else gets the full
stack.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup(set_prefix=False)

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.handlers.exception import convert_exception_to_response  # noqa: E402

from relay.upstream import close_clients  # noqa: E402


class APIHandler(ASGIHandler):
    """An ASGIHandler whose middleware chain is empty."""

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)


_api = APIHandler()
_site = ASGIStaticFilesHandler(ASGIHandler())


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"].startswith("/v1/"):
        await _api(scope, receive, send)
    elif scope["type"] == "lifespan":
        await _lifespan(receive, send)
    else:
        await _site(scope, receive, send)


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await close_clients()
            await send({"type": "lifespan.shutdown.complete"})
            return
