"""
The HTTP layer of the API paths (/v1 and the operator's endpoints): the
request read straight from the ASGI scope, the response written straight to
ASGI messages.

Django's handler builds an ASGIRequest (every header into META, a spooled
body file), resolves the path through the URL resolver and its middleware
wrappers, and encodes the response through its generic machinery: about a
fifth of a relayed request's CPU (bench/profile_request.py). The API needs
none of it: its views read a few headers, the body and the query string, and
answer with Django response objects, which are written here as they are. So
the views, their error shapes and the settings stay Django's; only the
request object and the dispatch are this module's. Every other path gets
Django's full stack (config.asgi).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponseBase, QueryDict

logger = logging.getLogger(__name__)

View = Callable[..., Awaitable[HttpResponseBase]]


class ApiRequest:
    """
    What the API's views use of a request, with the names Django's
    HttpRequest gives them: `method`, `path`, `headers` (names in lower
    case), `body`, `GET` and `META` (REMOTE_ADDR and the headers as HTTP_*).
    The relay keeps what a request holds on it as attributes (relay.inflight,
    relay.refusals).
    """

    def __init__(self, scope: dict, body: bytes | None):
        self.method = scope["method"]
        self.path = scope["path"]
        self.headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        client = scope.get("client")
        self.client = client[0] if client else None
        # None: larger than DATA_UPLOAD_MAX_MEMORY_SIZE, and not kept.
        self._body = body
        self._get = None
        self._meta = None
        self._query = scope.get("query_string", b"")

    @property
    def body(self) -> bytes:
        if self._body is None:
            raise RequestDataTooBig("larger than DATA_UPLOAD_MAX_MEMORY_SIZE")
        return self._body

    @property
    def GET(self) -> QueryDict:  # noqa: N802 (Django's name)
        if self._get is None:
            self._get = QueryDict(self._query.decode("latin-1"))
        return self._get

    @property
    def META(self) -> dict:  # noqa: N802 (Django's name)
        if self._meta is None:
            meta = {
                f"HTTP_{name.upper().replace('-', '_')}": value
                for name, value in self.headers.items()
            }
            meta["REMOTE_ADDR"] = self.client
            self._meta = meta
        return self._meta


class BodyTimedOut(Exception):
    """The client did not send its whole request body in time."""


class ClientLeft(Exception):
    """The client disconnected before its request body arrived."""


async def read_body(scope: dict, receive) -> bytes | None:
    """
    Return the request body, or None when it is larger than
    DATA_UPLOAD_MAX_MEMORY_SIZE (the rest is read and dropped, so that the
    connection can carry the next request). Raise BodyTimedOut once reading
    has taken SWITCHBOARD_BODY_READ_TIMEOUT_SECONDS: a client that announces
    a body and never sends it must not hold its connection and task forever.
    """
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    timeout = settings.SWITCHBOARD_BODY_READ_TIMEOUT_SECONDS
    try:
        async with asyncio.timeout(timeout if timeout > 0 else None):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientLeft
            body = message.get("body", b"")
            if not message.get("more_body") and (limit is None or len(body) <= limit):
                return body  # one message: the common case
            parts, size = [body], len(body)
            while message.get("more_body"):
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientLeft
                chunk = message.get("body", b"")
                size += len(chunk)
                if limit is None or size <= limit:
                    parts.append(chunk)
            return b"".join(parts) if limit is None or size <= limit else None
    except TimeoutError:
        raise BodyTimedOut(timeout) from None


def _header_list(response: HttpResponseBase) -> list[tuple[bytes, bytes]]:
    return [
        (name.encode("ascii"), value.encode("latin-1"))
        for name, value in response.items()
    ]


async def send_response(
    response: HttpResponseBase, send, state: "_Exchange | None" = None
) -> None:
    """Write `response` as ASGI messages: a stream part by part, as its
    iterator yields them."""
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": _header_list(response),
        }
    )
    if not response.streaming:
        if state is not None:
            state.finishing = True
        await send({"type": "http.response.body", "body": response.content})
        return
    content = aiter(response)
    try:
        async for part in content:
            await send({"type": "http.response.body", "body": part, "more_body": True})
    finally:
        closing = getattr(content, "aclose", None)
        if closing is not None:
            await closing()
    if state is not None:
        state.finishing = True
    await send({"type": "http.response.body", "body": b""})


async def serve(
    scope: dict,
    receive,
    send,
    view: View,
    kwargs: dict,
    responded: Callable[[ApiRequest, HttpResponseBase], None] | None = None,
    refused: Callable[[HttpResponseBase], HttpResponseBase] = lambda r: r,
) -> int | None:
    """
    Read the request, call `view(request, **kwargs)` and write its response;
    return the status sent (None: the client left first). `responded` sees
    the request and the response before it is sent; `refused` builds the
    answer to a body that did not arrive in time from a bare 408.

    A client that disconnects cancels the view, or the stream being written,
    as Django does: a request that is cut off stops its upstream call and
    settles what was produced. The view runs in this task, and one listener
    task waits for the disconnect.
    """
    try:
        body = await read_body(scope, receive)
    except BodyTimedOut as timed_out:
        response = refused(timed_out.args[0])
        # Whatever of the body comes later would pass for the next request.
        response["connection"] = "close"
        await send_response(response, send)
        return response.status_code
    except ClientLeft:
        return None
    request = ApiRequest(scope, body)
    serving = asyncio.current_task()
    state = _Exchange()
    listener = asyncio.create_task(_until_disconnect(receive, serving, state))
    try:
        response = await view(request, **kwargs)
        if responded is not None:
            responded(request, response)
        await send_response(response, send, state)
        return response.status_code
    except asyncio.CancelledError:
        if not state.left:
            raise
        return None
    finally:
        listener.cancel()


class _Exchange:
    __slots__ = ("left", "finishing")

    def __init__(self):
        self.left = False
        # The last message is being sent: nothing is left to cancel.
        self.finishing = False


async def _until_disconnect(receive, serving: asyncio.Task, state: _Exchange) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not state.finishing:
                state.left = True
                # Delivered where `serving` waits: before its last message.
                serving.cancel()
            return
