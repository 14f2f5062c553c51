"""
Server-rendered charts: the geometry of a stacked bar chart, computed here
and drawn as inline SVG by templates/portal/app/includes/chart_stacked_bars.html.

No JavaScript: every bar segment carries a <title> (the browser's tooltip),
and the same figures go into a visually hidden table for screen readers.
"""

from dataclasses import dataclass, field
from datetime import date

from billing.money import NANO_PER_USD, format_usd
from portal.selectors import DailySpend
from portal.templatetags.switchboard import usd as usd_filter

# Okabe and Ito's palette, told apart with most colour-vision deficiencies,
# readable on light and dark backgrounds; grey is kept for "Other".
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
OTHER_COLOR = "#999999"
OTHER_LABEL = "Other"

WIDTH = 720
HEIGHT = 240
MARGIN_LEFT = 72
MARGIN_RIGHT = 8
MARGIN_TOP = 12
MARGIN_BOTTOM = 28
TICKS = 4
# An x-axis label every this many days, counted back from today.
LABEL_EVERY = 7


def usd(nano: int) -> str:
    """Return `nano` as exact USD, as every page shows money: "$1.50"."""
    return usd_filter(nano)


def day_label(day: date) -> str:
    return f"{day:%b} {day.day}"


@dataclass(frozen=True)
class Segment:
    label: str
    color: str
    y: float
    height: float
    title: str


@dataclass(frozen=True)
class Bar:
    day: date
    x: float
    width: float
    slot_x: float
    slot_width: float
    segments: list[Segment]
    total: int
    title: str
    label: str  # the x-axis label under this bar, or ""
    label_x: float


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class LegendItem:
    label: str
    color: str
    total: str


@dataclass(frozen=True)
class TableRow:
    day: str
    values: list[str]
    total: str


@dataclass
class StackedBars:
    title: str
    summary: str  # the aria-label: what the chart says, in one sentence
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = MARGIN_LEFT
    plot_right: int = WIDTH - MARGIN_RIGHT
    plot_top: int = MARGIN_TOP
    plot_bottom: int = HEIGHT - MARGIN_BOTTOM
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    legend: list[LegendItem] = field(default_factory=list)
    table_columns: list[str] = field(default_factory=list)
    table_rows: list[TableRow] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.legend

    @property
    def plot_height(self) -> int:
        return self.plot_bottom - self.plot_top

    @property
    def axis_label_x(self) -> int:
        return self.plot_left - 8

    @property
    def x_label_y(self) -> int:
        return self.plot_bottom + 18


def nice_step(top: int, ticks: int = TICKS) -> int:
    """
    Return the smallest 1, 2 or 5 times a power of ten (in nano-USD, at
    least one nano-USD) such that `ticks` steps reach `top`.
    """
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if step * ticks >= top:
                return step
        magnitude *= 10


def tick_label(nano: int, step: int) -> str:
    """Label an axis tick with as many decimals as the step needs (>= 2)."""
    places = 2
    while places < 9 and step * 10**places % NANO_PER_USD:
        places += 1
    return format_usd(nano, places=places)


def _ranked_series(
    series: dict[str, dict[date, int]], max_series: int
) -> list[tuple[str, str, dict[date, int]]]:
    """Return (label, colour, per-day) for the biggest series, the rest
    folded into "Other" so the colours stay few enough to tell apart."""
    ranked = sorted(series.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    if len(ranked) > max_series:
        kept, rest = ranked[: max_series - 1], ranked[max_series - 1 :]
        other: dict[date, int] = {}
        for _, per_day in rest:
            for day, value in per_day.items():
                other[day] = other.get(day, 0) + value
        ranked = [*kept, (OTHER_LABEL, other)]
    return [
        (
            label,
            OTHER_COLOR if label == OTHER_LABEL else PALETTE[n % len(PALETTE)],
            per_day,
        )
        for n, (label, per_day) in enumerate(ranked)
    ]


def stacked_bars(
    daily: DailySpend, *, title: str, what: str, max_series: int = len(PALETTE)
) -> StackedBars:
    """
    Lay out spend per day stacked by series (`what` names the series kind,
    e.g. "model"). Amounts stay integers until they become pixels.
    """
    chart = StackedBars(title=title, summary="")
    ranked = _ranked_series(daily.series, max_series)
    days = daily.days
    totals = {day: sum(per_day.get(day, 0) for _, _, per_day in ranked) for day in days}
    grand_total = sum(totals.values())
    if not ranked or grand_total == 0:
        chart.summary = f"{title}: no spend in the last {len(days)} days."
        return chart

    step = nice_step(max(totals.values()))
    top = step * TICKS
    plot_height = chart.plot_height
    slot = (chart.plot_right - chart.plot_left) / len(days)
    bar_width = round(slot * 0.72, 2)

    def y_of(nano: int) -> float:
        return round(chart.plot_bottom - nano * plot_height / top, 2)

    chart.ticks = [
        Tick(y=y_of(step * n), label=tick_label(step * n, step))
        for n in range(TICKS + 1)
    ]
    last = len(days) - 1
    for index, day in enumerate(days):
        slot_x = chart.plot_left + index * slot
        segments = []
        below = 0
        for label, color, per_day in ranked:
            value = per_day.get(day, 0)
            if not value:
                continue
            y_top, y_bottom = y_of(below + value), y_of(below)
            segments.append(
                Segment(
                    label=label,
                    color=color,
                    y=y_top,
                    height=round(y_bottom - y_top, 2),
                    title=f"{day_label(day)}, {label}: {usd(value)}",
                )
            )
            below += value
        chart.bars.append(
            Bar(
                day=day,
                x=round(slot_x + (slot - bar_width) / 2, 2),
                width=bar_width,
                slot_x=round(slot_x, 2),
                slot_width=round(slot, 2),
                segments=segments,
                total=totals[day],
                title=f"{day_label(day)}: {usd(totals[day])} in total",
                label=day_label(day) if (last - index) % LABEL_EVERY == 0 else "",
                label_x=round(slot_x + slot / 2, 2),
            )
        )

    chart.legend = [
        LegendItem(label=label, color=color, total=usd(sum(per_day.values())))
        for label, color, per_day in ranked
    ]
    chart.table_columns = [label for label, _, _ in ranked]
    chart.table_rows = [
        TableRow(
            day=day_label(day),
            values=[usd(per_day.get(day, 0)) for _, _, per_day in ranked],
            total=usd(totals[day]),
        )
        for day in days
        if totals[day]
    ]
    busiest = max(days, key=lambda day: (totals[day], day))
    chart.summary = (
        f"{title}: {usd(grand_total)} over the last {len(days)} days across "
        f"{len(daily.series)} {what}{'s' if len(daily.series) != 1 else ''}; "
        f"the most on {day_label(busiest)} ({usd(totals[busiest])}). "
        f"Largest: {ranked[0][0]} ({chart.legend[0].total})."
    )
    return chart
