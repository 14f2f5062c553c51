import re
from datetime import UTC, datetime, timedelta

from rest_framework import exceptions
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.utils.urls import replace_query_param

# A cursor is "n" (forward) or "r" (reverse), the offset past rows at the
# same instant, and optionally "." and that instant in microseconds since
# 1970 (UTC). Every string of this shape is a cursor the API can follow, so
# the schema's pattern is the whole rule.
CURSOR_PATTERN = r"^[nr][0-9]{1,4}(\.-?[0-9]{1,16})?$"
_CURSOR = re.compile(r"([nr])([0-9]{1,4})(?:\.(-?[0-9]{1,16}))?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class NewestFirst(CursorPagination):
    """
    Newest first, by an opaque cursor: pages stay stable while new rows
    arrive, and no page costs a COUNT over a large table.
    """

    ordering = ("-created_at", "-pk")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    invalid_cursor_message = (
        "Invalid cursor: use the next or previous link as is "
        "(the pattern is in the schema)."
    )

    def get_page_size(self, request) -> int:
        # A bad page size is refused, not silently replaced by the default.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or not (
            0 < int(raw) <= self.max_page_size
        ):
            raise exceptions.ValidationError(
                {
                    self.page_size_query_param: [
                        f"A whole number from 1 to {self.max_page_size}."
                    ]
                }
            )
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(
                    {"minimum": 1, "maximum": self.max_page_size}
                )
                parameter["description"] = (
                    f"Results per page, 1 to {self.max_page_size} "
                    f"(default {self.page_size})."
                )
            elif parameter["name"] == self.cursor_query_param:
                parameter["schema"]["pattern"] = CURSOR_PATTERN
                # Empty: the first page, as when it is absent.
                parameter["allowEmptyValue"] = True
                parameter["description"] = (
                    "Where the page starts: taken as is from a `next` or "
                    "`previous` link. Empty or absent: the first page."
                )
        return parameters

    def decode_cursor(self, request):
        """Return the request's Cursor, None for the first page; refuse a bad one."""
        encoded = request.query_params.get(self.cursor_query_param)
        if not encoded:
            return None
        match = _CURSOR.fullmatch(encoded)
        if match is None:
            # Bad input is a 400, not DRF's 404: the list exists.
            raise exceptions.ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            )
        direction, offset, micros = match.groups()
        position = None
        if micros is not None:
            # The same text as the position DRF takes from a row: str() of
            # its created_at, which the database gives in UTC.
            position = str(_EPOCH + timedelta(microseconds=int(micros)))
        return Cursor(
            offset=min(int(offset), self.offset_cutoff),
            reverse=direction == "r",
            position=position,
        )

    def encode_cursor(self, cursor) -> str:
        """Return the URL of the page that `cursor` starts."""
        offset = min(cursor.offset, self.offset_cutoff)
        encoded = f"{'r' if cursor.reverse else 'n'}{offset}"
        if cursor.position is not None:
            moment = datetime.fromisoformat(cursor.position)
            encoded += f".{(moment - _EPOCH) // timedelta(microseconds=1)}"
        return replace_query_param(self.base_url, self.cursor_query_param, encoded)
