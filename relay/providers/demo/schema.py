"""
Example instances of a JSON Schema: what the demo answers a chat completion
that asks for `response_format: json_schema`, and the arguments of the tool
calls it makes. Deterministic, so that an answer can be stated exactly.
"""

import math

_STRING_FORMATS = {
    "date": "2026-01-01",
    "date-time": "2026-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "email": "demo@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
# Deeper than any hand-written schema: stops a recursive $ref.
MAX_SCHEMA_DEPTH = 12


def schema_example(schema, *, name: str = "value", root=None, depth: int = 0):
    """
    Return a deterministic instance of a JSON Schema: required properties
    filled, strings with short text naming the property, numbers 1 (within
    minimum and maximum), booleans true, enums and consts their first value,
    arrays with one item (or minItems), the first alternative of
    anyOf/oneOf, local $refs followed.
    """
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > MAX_SCHEMA_DEPTH:
        return f"demo {name}"
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return schema_example(target, name=name, root=root, depth=depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or () if isinstance(o, dict)]
        options = [o for o in options if o.get("type") != "null"] or options
        if options:
            return schema_example(options[0], name=name, root=root, depth=depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
        kind = "array" if "items" in schema else kind
    if kind == "object":
        properties = schema.get("properties") or {}
        return {
            key: schema_example(
                properties.get(key), name=key, root=root, depth=depth + 1
            )
            for key in schema.get("required") or ()
            if isinstance(key, str)
        }
    if kind == "array":
        count = schema.get("minItems")
        count = count if isinstance(count, int) and count > 1 else 1
        item = schema_example(
            schema.get("items"), name=name, root=root, depth=depth + 1
        )
        return [item] * count
    if kind in ("integer", "number"):
        value = 1
        low, high = schema.get("minimum"), schema.get("maximum")
        if isinstance(low, int | float) and value < low:
            value = math.ceil(low) if kind == "integer" else low
        if isinstance(high, int | float) and value > high:
            value = math.floor(high) if kind == "integer" else high
        return value
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _STRING_FORMATS.get(schema.get("format"), f"demo {name}")
