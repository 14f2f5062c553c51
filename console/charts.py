"""
Chart geometry for the console, drawn as inline SVG by
templates/console/includes/chart_*.html: no JavaScript, no external library.

Every chart carries role="img" and an aria-label summing it up, a <title>
per bar (the browser's tooltip), and the same figures as a table under it.
Amounts stay exact integers; only the drawing uses floats.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# Okabe and Ito's palette: told apart with most colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")

WIDTH = 760
HEIGHT = 240
MARGIN_LEFT = 84
MARGIN_RIGHT = 8
MARGIN_TOP = 12
MARGIN_BOTTOM = 30
TICKS = 4
# An x-axis label on at most this many bars.
MAX_X_LABELS = 12


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int]
    color: str = ""


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class XLabel:
    x: float
    label: str


@dataclass(frozen=True)
class LegendItem:
    name: str
    color: str
    total: str


@dataclass
class Chart:
    title: str
    aria_label: str
    width: int
    height: int
    rects: list[Rect]
    ticks: list[Tick]
    x_labels: list[XLabel]
    zero_y: float
    legend: list[LegendItem]
    # The table fallback: a header row and one row per category.
    table_header: list[str]
    table_rows: list[list[str]] = field(default_factory=list)
    plot_left: int = MARGIN_LEFT
    plot_right: int = WIDTH - MARGIN_RIGHT


def _nice_step(span: int, ticks: int) -> int:
    """A round step (1, 2 or 5 times a power of ten) covering `span`."""
    raw = max(1, -(-span // ticks))
    power = 1
    while power * 10 <= raw:
        power *= 10
    factor = next(f for f in (1, 2, 5, 10) if f * power >= raw)
    return factor * power


def _axis(low: int, high: int) -> tuple[int, int, int]:
    """Round the axis to steps; return (bottom, top, step), 0 always inside."""
    low, high = min(0, low), max(0, high)
    if low == high:
        high = 1
    step = _nice_step(high - low, TICKS)
    bottom = (low // step) * step  # low <= 0: rounds away from zero
    top = -(-high // step) * step
    return bottom, top, step


def grouped_bars(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[int], str],
    unit: str = "",
) -> Chart:
    """Bars for each category (label), one per series side by side; values
    may be negative (a margin below zero)."""
    series = [
        Series(s.name, list(s.values), s.color or PALETTE[i % len(PALETTE)])
        for i, s in enumerate(series)
    ]
    values = [v for s in series for v in s.values] or [0]
    bottom, top, step = _axis(min(values), max(values))
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT

    def y_of(value: int) -> float:
        return MARGIN_TOP + (top - value) / (top - bottom) * plot_height

    zero_y = y_of(0)
    count = max(1, len(labels))
    slot = plot_width / count
    bar_width = max(1.0, slot * 0.8 / max(1, len(series)))
    rects, x_labels = [], []
    label_every = max(1, -(-count // MAX_X_LABELS))
    for i, label in enumerate(labels):
        slot_x = MARGIN_LEFT + i * slot + slot * 0.1
        for j, s in enumerate(series):
            value = s.values[i]
            y = y_of(max(value, 0))
            height = abs(y_of(value) - zero_y)
            rects.append(
                Rect(
                    x=round(slot_x + j * bar_width, 2),
                    y=round(y, 2),
                    width=round(bar_width, 2),
                    height=round(max(height, 0.0), 2),
                    color=s.color,
                    title=f"{label}: {s.name} {fmt(value)}",
                )
            )
        if (count - 1 - i) % label_every == 0:
            x_labels.append(
                XLabel(x=round(MARGIN_LEFT + (i + 0.5) * slot, 2), label=label)
            )
    ticks = [
        Tick(y=round(y_of(value), 2), label=fmt(value))
        for value in range(bottom, top + step, step)
    ]
    totals = {s.name: sum(s.values) for s in series}
    summary = "; ".join(f"{name} {fmt(total)}" for name, total in totals.items())
    return Chart(
        title=title,
        aria_label=f"{title}, {len(labels)} {unit or 'periods'}. Totals: {summary}.",
        width=WIDTH,
        height=HEIGHT,
        rects=rects,
        ticks=ticks,
        x_labels=x_labels,
        zero_y=round(zero_y, 2),
        legend=[LegendItem(s.name, s.color, fmt(totals[s.name])) for s in series],
        table_header=["", *[s.name for s in series]],
        table_rows=[
            [label, *[fmt(s.values[i]) for s in series]]
            for i, label in enumerate(labels)
        ],
    )


@dataclass(frozen=True)
class HBar:
    label: str
    y: float
    width: float
    value: str


@dataclass
class HChart:
    title: str
    aria_label: str
    width: int
    height: int
    bars: list[HBar]
    bar_height: float
    label_width: int
    table_header: list[str]
    table_rows: list[list[str]]


HBAR_ROW = 26
HBAR_LABEL = 220


def horizontal_bars(
    *,
    title: str,
    items: Sequence[tuple[str, int]],
    fmt: Callable[[int], str],
    name: str,
) -> HChart:
    """One bar per item, longest first as given (e.g. top tenants by spend)."""
    largest = max((value for _, value in items), default=0) or 1
    span = WIDTH - HBAR_LABEL - 120
    bars = [
        HBar(
            label=label,
            y=i * HBAR_ROW,
            width=round(max(value, 0) / largest * span, 2),
            value=fmt(value),
        )
        for i, (label, value) in enumerate(items)
    ]
    listed = ", ".join(f"{label} {fmt(value)}" for label, value in items[:5])
    return HChart(
        title=title,
        aria_label=f"{title}: {listed or 'none'}.",
        width=WIDTH,
        height=max(1, len(items)) * HBAR_ROW,
        bars=bars,
        bar_height=HBAR_ROW - 8,
        label_width=HBAR_LABEL,
        table_header=["", name],
        table_rows=[[label, fmt(value)] for label, value in items],
    )
