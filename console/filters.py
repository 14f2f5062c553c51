"""Parsing of the console's filter parameters, with errors a person can act on."""

from collections.abc import Callable, Mapping

from django.db.models import QuerySet

from relay.selectors import UsageFilterError, moment_parse

# Console filters are parsed and refused the way the customer's are.
FilterError = UsageFilterError

ID_MAX = 2**63


def id_parse(raw: str) -> int | None:
    """A database id from text, or None."""
    if raw.isascii() and raw.isdigit() and 0 < int(raw) < ID_MAX:
        return int(raw)
    return None


def text_param(params: Mapping[str, str], name: str) -> str:
    """`params[name]` stripped, or "" when missing or not text."""
    raw = params.get(name)
    return raw.strip() if isinstance(raw, str) else ""


def ids_parse(params: Mapping[str, str], errors: dict, *names: str) -> dict:
    """Each of `names` (e.g. "tenant") of `params` as a database id, errors
    into `errors`; an empty parameter does not filter."""
    found = {}
    for name in names:
        raw = text_param(params, name)
        if not raw:
            continue
        if id_parse(raw) is None:
            errors[name] = f'"{raw[:40]}" is not a {name} id (a positive integer).'
        else:
            found[name] = id_parse(raw)
    return found


def range_parse(params: Mapping[str, str], errors: dict) -> dict:
    """`start` and `end` of `params` as datetimes, errors into `errors`."""
    found = {}
    for name in ("start", "end"):
        raw = text_param(params, name)
        if not raw:
            continue
        try:
            found[name] = moment_parse(raw, end=name == "end")
        except (ValueError, OverflowError):
            errors[name] = (
                f'"{raw[:40]}" is not an ISO 8601 date or datetime, e.g. '
                '"2025-01-31" or "2025-01-31T12:00:00Z".'
            )
    if "start" in found and "end" in found and found["start"] >= found["end"]:
        errors["end"] = "The end of the range must be after its start."
    return found


def filters_or_errors(
    parse: Callable[[Mapping[str, str]], dict], params: Mapping[str, str]
) -> tuple[dict, dict]:
    """(filters, {}) parsed from `params`, or ({}, errors by parameter)."""
    try:
        return parse(params), {}
    except FilterError as exc:
        return {}, exc.errors


def tenant_range_filter(queryset: QuerySet, filters: Mapping) -> QuerySet:
    """`queryset` narrowed to the tenant (ids_parse) and created_at range
    (range_parse, end excluded) of `filters`."""
    if "tenant" in filters:
        queryset = queryset.filter(tenant_id=filters["tenant"])
    if "start" in filters:
        queryset = queryset.filter(created_at__gte=filters["start"])
    if "end" in filters:
        queryset = queryset.filter(created_at__lt=filters["end"])
    return queryset
