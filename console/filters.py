"""Parsing of the console's filter parameters, with errors a person can act on."""

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta

from django.utils import timezone

ID_MAX = 2**63


class FilterError(ValueError):
    """Bad filter parameters; `errors` maps each to a readable message."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__(
            "; ".join(f"{name}: {message}" for name, message in self.errors.items())
        )


def id_parse(raw: str) -> int | None:
    """A database id from text, or None."""
    if raw.isascii() and raw.isdigit() and 0 < int(raw) < ID_MAX:
        return int(raw)
    return None


def moment_parse(raw: str, *, end: bool = False) -> datetime:
    """
    An ISO 8601 date or datetime; naive ones are in the site's time zone. A
    date as the `end` of a range means the end of that day (the start of the
    next). Raise ValueError.
    """
    if len(raw) == 10:
        day = date.fromisoformat(raw)
        if end:
            day += timedelta(days=1)
        moment = datetime.combine(day, time.min)
    else:
        moment = datetime.fromisoformat(raw)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment


def range_parse(params: Mapping[str, str], errors: dict) -> dict:
    """`start` and `end` of `params` as datetimes, errors into `errors`."""
    found = {}
    for name in ("start", "end"):
        raw = (params.get(name) or "").strip()
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
