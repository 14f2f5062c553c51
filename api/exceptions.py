"""
One error shape for every refusal of the management API:

    {"detail": "<what went wrong>", "code": "<machine-readable>",
     "errors": {"<field>": ["<message>", ...]}}   # only for invalid input
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.views import exception_handler


def api_exception_handler(exc, context):
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = response.data
        if not isinstance(errors, dict):
            errors = {"non_field_errors": errors}
        response.data = {
            "detail": _summary(errors),
            "code": "invalid",
            "errors": errors,
        }
        return response
    if isinstance(exc, Http404):
        # The same answer for every kind of object, whether it does not
        # exist or belongs to another tenant.
        response.data = {"detail": "No such object.", "code": "not_found"}
        return response
    if isinstance(exc, PermissionDenied):
        code = "permission_denied"
    else:
        code = exc.get_codes()
        if not isinstance(code, str):
            code = exc.default_code
    response.data = {"detail": str(response.data.get("detail", "")), "code": code}
    return response


def _summary(errors: dict) -> str:
    """Return "field: first message; ..." for a person reading the error."""
    parts = []
    for field, messages in errors.items():
        message = _first(messages)
        parts.append(message if field == "non_field_errors" else f"{field}: {message}")
    return "; ".join(parts) or "Invalid input."


def _first(messages) -> str:
    while isinstance(messages, list | dict) and messages:
        messages = (
            next(iter(messages.values())) if isinstance(messages, dict) else messages[0]
        )
    return str(messages)


@csrf_exempt  # A 404 whatever the method, never a CSRF refusal page.
def unknown_endpoint(request, *args, **kwargs):
    """Answer paths under /api/ that match no endpoint, in the same shape."""
    path = request.path
    detail = f"No API endpoint at {path}."
    if not path.endswith("/"):
        try:
            match = resolve(f"{path}/")
        except Resolver404:
            match = None
        if match is not None and match.func is not unknown_endpoint:
            detail += f" Did you mean {path}/?"
    return JsonResponse({"detail": detail, "code": "unknown_endpoint"}, status=404)
