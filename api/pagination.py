from rest_framework import exceptions
from rest_framework.pagination import CursorPagination


class NewestFirst(CursorPagination):
    """
    Newest first, by an opaque cursor: pages stay stable while new rows
    arrive, and no page costs a COUNT over a large table.
    """

    ordering = ("-created_at", "-pk")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    invalid_cursor_message = "Invalid cursor: use the next or previous link as is."

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
                parameter["description"] = (
                    "Where the page starts: taken as is from a `next` or "
                    "`previous` link."
                )
        return parameters

    def decode_cursor(self, request):
        # Bad input is a 400, not DRF's 404: the list exists.
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound as exc:
            raise exceptions.ValidationError(
                {self.cursor_query_param: [str(exc.detail)]}
            ) from exc
