"""
The filters of the console's other logs (payments, the audit log): ids,
dates and ranges parsed and refused by the fields of relay.filters, as the
usage explorer's are.
"""

from collections.abc import Callable, Mapping

from django import forms
from django.db.models import QuerySet

from relay.filters import IdField, MomentField, RangeForm
from relay.filters import moment_parse as moment_parse


class FilterError(ValueError):
    """
    Query parameters that do not describe a filter. `errors` maps each bad
    parameter to a message a person can act on.
    """

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__(
            "; ".join(f"{name}: {message}" for name, message in self.errors.items())
        )


class _Range(RangeForm):
    start = MomentField(required=False)
    end = MomentField(required=False, end=True)


def text_param(params: Mapping[str, str], name: str) -> str:
    """`params[name]` stripped, or "" when missing or not text."""
    raw = params.get(name)
    return raw.strip() if isinstance(raw, str) else ""


def ids_parse(params: Mapping[str, str], errors: dict, *names: str) -> dict:
    """Each of `names` (e.g. "tenant") of `params` as a database id, errors
    into `errors`; an empty parameter does not filter."""
    found = {}
    for name in names:
        try:
            value = IdField(noun=f"a {name}", required=False).clean(
                text_param(params, name)
            )
        except forms.ValidationError as exc:
            errors[name] = exc.messages[0]
        else:
            if value is not None:
                found[name] = value
    return found


def range_parse(params: Mapping[str, str], errors: dict) -> dict:
    """`start` and `end` of `params` as datetimes, errors into `errors`."""
    form = _Range({name: text_param(params, name) for name in ("start", "end")})
    form.is_valid()
    errors.update({name: messages[0] for name, messages in form.errors.items()})
    return {name: value for name, value in form.cleaned_data.items() if value}


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
