"""
Latency percentiles per group of usage records: PostgreSQL computes them in
the grouping query itself (percentile_cont); SQLite, which has no such
aggregate, gets them from one extra query of the latencies, in Python.
"""

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Aggregate, FloatField, QuerySet

from config.db import on_postgres


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile, e.g. PercentileCont("latency_ms", 0.95)."""

    function = "PERCENTILE_CONT"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        if not 0 <= fraction <= 1:
            raise ValueError("A percentile is a fraction between 0 and 1.")
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def percentile(values: list[int], fraction: float) -> float | None:
    """percentile_cont of `values` (sorted), as PostgreSQL computes it."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def latency_annotations(prefix: str = "", **filter_) -> dict:
    """Annotations p50/p95 of latency_ms for a grouping query on PostgreSQL
    (empty elsewhere: use latency_percentiles)."""
    if not on_postgres():
        return {}
    extra = {"filter": filter_["filter"]} if filter_ else {}
    return {
        f"{prefix}p50": PercentileCont("latency_ms", 0.5, **extra),
        f"{prefix}p95": PercentileCont("latency_ms", 0.95, **extra),
    }


def latency_percentiles(
    records: QuerySet, group_by: str, fractions: Iterable[float] = (0.5, 0.95)
) -> dict:
    """
    {group: (p50, p95, ...)} of latency_ms over `records`, computed in Python
    (SQLite). Reads one (group, latency) pair per record.
    """
    latencies: dict = defaultdict(list)
    for group, latency in records.values_list(group_by, "latency_ms").iterator(
        chunk_size=5000
    ):
        latencies[group].append(latency)
    result = {}
    for group, values in latencies.items():
        values.sort()
        result[group] = tuple(percentile(values, f) for f in fractions)
    return result
