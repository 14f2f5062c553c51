"""
OpenAPI schema additions: the management token as a security scheme, the
error responses every operation can give, in the one error shape, and the
rules a serializer or filter cannot state by itself (the models a key may
name, empty query parameters that do not filter).
"""

from django.db import DatabaseError
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)

from billing.models import ModelPrice
from relay.filters import UsageFilter

ERROR_COMPONENT = {
    "type": "object",
    "description": "Every refusal of the API has this shape.",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong."},
        "code": {
            "type": "string",
            "description": "Machine-readable, e.g. not_found, permission_denied, "
            "not_authenticated, invalid_token, invalid, throttled.",
        },
        "errors": {
            "type": "object",
            "description": "Only for invalid input: the messages for each field "
            "or query parameter.",
            "additionalProperties": {},
        },
    },
    "required": ["detail", "code"],
}
ERRORS = {
    "400": "Invalid input: see `errors`.",
    "401": "No credentials, or a management token that is unknown, revoked, "
    "or whose owner left the tenant.",
    "403": "Not allowed: a member trying what only owners may do, a missing "
    "CSRF token with session authentication, or no tenant.",
    "404": "No such object in the caller's tenant.",
    "429": "Too many requests: retry after the Retry-After header's seconds.",
}


class ManagementTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ManagementTokenAuthentication"
    name = "managementToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A management token, sb-mgmt-..., created at "
            "POST /api/tokens/ or in the portal.",
        }


class KnownModelScheme(OpenApiSerializerFieldExtension):
    target_class = "api.serializers.KnownModelField"

    def map_serializer_field(self, auto_schema, direction):
        # Read when the schema is made, so it lists the price list of now.
        # Without a database (`check --deploy` before one exists) the field
        # is described rather than listed.
        try:
            models = sorted(ModelPrice.objects.values_list("model", flat=True))
        except DatabaseError:
            return {"type": "string", "description": "A model on the price list."}
        if not models:
            return {"type": "string", "not": {}, "description": "No model has a price."}
        return {"type": "string", "enum": models}


def add_error_responses(result, generator, request, public):
    """
    Postprocessing hook: document the error responses of each operation,
    and that an empty filter of the usage log does not filter.
    """
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = (
        ERROR_COMPONENT
    )
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", ()):
                if parameter.get("in") == "query" and (
                    parameter["name"] in UsageFilter.base_filters
                ):
                    parameter["allowEmptyValue"] = True
            codes = ["401", "403", "429"]
            takes_input = method in ("post", "put", "patch") or any(
                parameter.get("in") == "query"
                for parameter in operation.get("parameters", ())
            )
            if takes_input:
                codes.append("400")
            if "{" in path:
                codes.append("404")
            responses = operation.setdefault("responses", {})
            for code in sorted(codes):
                responses.setdefault(
                    code,
                    {
                        "description": ERRORS[code],
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Error"}
                            }
                        },
                    },
                )
    return result
