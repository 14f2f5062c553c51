"""
CSV downloads of any size, streamed in bounded memory.

Under ASGI (production: uvicorn) Django reads a synchronous iterator whole
into memory before sending the first byte, so the rows are handed to it as an
asynchronous iterator that pulls each chunk on the request's own database
thread; under WSGI and the test client a plain iterator does.
"""

import csv
from collections.abc import AsyncIterator, Iterable, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse

ROWS_PER_CHUNK = 500
# What a spreadsheet program reads as the start of a formula (tab and
# carriage return too: some strip them and then see what follows).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: object) -> str:
    """
    `value` as text that a spreadsheet program shows as typed, never runs as
    a formula: text starting like one gets a leading apostrophe. For text
    that anyone outside staff may have written; numbers go in as they are.
    """
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class Echo:
    """A file whose write() hands back what it is given, so csv.writer
    produces the lines of a streaming response."""

    def write(self, value: str) -> str:
        return value


def _chunks(rows: Iterable[Iterable]) -> Iterator[str]:
    writer = csv.writer(Echo())
    batch = []
    for row in rows:
        batch.append(writer.writerow(row))
        if len(batch) >= ROWS_PER_CHUNK:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


async def _pulled(iterator: Iterator[str]) -> AsyncIterator[str]:
    done = object()
    # thread_sensitive: every chunk on the same thread, so the query's
    # server-side cursor stays on its connection.
    pull = sync_to_async(next, thread_sensitive=True)
    while (chunk := await pull(iterator, done)) is not done:
        yield chunk


def csv_response(request, rows: Iterable[Iterable], filename: str):
    """A streaming CSV attachment of `rows` (the first one the header)."""
    chunks = _chunks(rows)
    content = _pulled(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
