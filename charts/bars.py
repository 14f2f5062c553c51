"""
Bar chart geometry, drawn by templates/charts/bars.html (vertical bars,
grouped or stacked) and templates/charts/hbars.html (horizontal bars).

Every chart carries role="img" and an aria-label summing it up, a <title>
per bar (the browser's tooltip), and the same figures as a table under it.

An SVG scales to its box with its text, so one drawing would shrink its
labels below reading size on a phone: each chart is laid out at a few widths
(LAYOUTS) and the page shows the one that fits its box (a CSS container
query), its labels between about 10 and 16 px at any width.
Colours are SVG presentation attributes, never style attributes, so the
console's Content-Security-Policy (no inline styles) allows them. Amounts
stay exact integers; only the drawing uses floats.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from billing.money import NANO_PER_USD, format_usd, format_usd_human

# Okabe and Ito's palette, told apart with most colour-vision deficiencies,
# readable on light and dark backgrounds; grey is kept for "Other".
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
OTHER_COLOR = "#999999"
OTHER_LABEL = gettext_lazy("Other")

WIDTH = 760
HEIGHT = 240
MARGIN_LEFT = 84
MARGIN_RIGHT = 8
MARGIN_TOP = 12
MARGIN_BOTTOM = 30
TICKS = 4
# An x-axis label on at most this many bars, unless the caller says otherwise.
MAX_X_LABELS = 12
# The drawings of each chart: (width in SVG units, most x-axis labels), the
# widest first. CSS shows "wide" in boxes of 640 px and more, "medium" from
# 440 px, "narrow" below (static/css/app.css, console.css): with 12-unit
# labels every drawing's text renders at 10 px or more.
LAYOUTS = (("wide", WIDTH, MAX_X_LABELS), ("medium", 520, 8), ("narrow", 320, 4))
# The y-axis labels' room: about this many SVG units per character at the
# 12-unit font size, and never less than MIN_MARGIN_LEFT.
CHAR_WIDTH = 7
MIN_MARGIN_LEFT = 40

HBAR_ROW = 26
HBAR_LABEL = 220
# Horizontal bars per layout: (name, width, label column, label characters).
HBAR_LAYOUTS = (
    ("wide", WIDTH, HBAR_LABEL, 32),
    ("medium", 520, 160, 22),
    ("narrow", 320, 110, 14),
)
# Room right of the longest bar for its value.
HBAR_VALUE = 90


def _counted(count: int, unit: str) -> str:
    """`count` of a unit the callers count in ("30 days", "3 models"), in
    the page's language; a unit named nowhere here is written as given."""
    if unit == "days":
        phrase = ngettext("%(count)s day", "%(count)s days", count)
    elif unit == "weeks":
        phrase = ngettext("%(count)s week", "%(count)s weeks", count)
    elif unit == "months":
        phrase = ngettext("%(count)s month", "%(count)s months", count)
    elif unit == "periods":
        phrase = ngettext("%(count)s period", "%(count)s periods", count)
    elif unit == "model":
        phrase = ngettext("%(count)s model", "%(count)s models", count)
    elif unit == "key":
        phrase = ngettext("%(count)s API key", "%(count)s API keys", count)
    else:
        return f"{count} {unit}"
    return phrase % {"count": count}


def usd(nano: int) -> str:
    """USD as every page shows money: "$1,234.50", "$0.00000025"."""
    return format_usd_human(nano)


def usd_tick(nano: int, step: int) -> str:
    """An axis tick in USD with as many decimals as the step needs (>= 2),
    so that every tick of one axis has the same number of them."""
    places = 2
    while places < 9 and step * 10**places % NANO_PER_USD:
        places += 1
    return format_usd(nano, places=places)


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
class Column:
    """One category's slot across the plot (a hover target with its own
    tooltip when `title` is set) and the bars drawn in it."""

    x: float
    width: float
    title: str
    rects: list[Rect]


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class XLabel:
    x: float
    label: str
    anchor: str = "middle"  # SVG text-anchor


@dataclass(frozen=True)
class LegendItem:
    name: str
    color: str
    total: str


@dataclass
class BarChart:
    title: str
    # What the chart says in one sentence; shown instead of it when empty.
    aria_label: str
    empty: bool = False
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = MARGIN_LEFT
    plot_right: int = WIDTH - MARGIN_RIGHT
    plot_top: int = MARGIN_TOP
    plot_bottom: int = HEIGHT - MARGIN_BOTTOM
    columns: list[Column] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    x_labels: list[XLabel] = field(default_factory=list)
    zero_y: float = HEIGHT - MARGIN_BOTTOM
    legend: list[LegendItem] = field(default_factory=list)
    # The table fallback: a header row and one row per category.
    table_header: list[str] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)
    # This drawing's name in LAYOUTS, and the narrower drawings of the chart.
    layout: str = LAYOUTS[0][0]
    narrower: list["BarChart"] = field(default_factory=list)

    @property
    def plot_height(self) -> int:
        return self.plot_bottom - self.plot_top

    @property
    def layouts(self) -> list["BarChart"]:
        """Every drawing of the chart, the widest (this one) first."""
        return [self, *self.narrower]

    @property
    def rects(self) -> list[Rect]:
        return [rect for column in self.columns for rect in column.rects]


def nice_step(span: int, ticks: int = TICKS) -> int:
    """The smallest 1, 2 or 5 times a power of ten (at least 1) such that
    `ticks` steps cover `span`."""
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
    step = nice_step(high - low)
    bottom = (low // step) * step  # low <= 0: rounds away from zero
    top = -(-high // step) * step
    return bottom, top, step


def _colored(series: Sequence[Series]) -> list[Series]:
    return [
        Series(s.name, list(s.values), s.color or PALETTE[i % len(PALETTE)])
        for i, s in enumerate(series)
    ]


def _layout(
    chart: BarChart,
    *,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[int], str],
    tick_fmt: Callable[[int, int], str] | None,
    label_every: int | None,
    stacked: bool,
) -> None:
    """Fill in the chart's ticks, columns and x-axis labels."""
    count = max(1, len(labels))
    if stacked:
        heights = [sum(s.values[i] for s in series) for i in range(len(labels))]
    else:
        heights = [v for s in series for v in s.values]
    bottom, top, step = _axis(min(heights, default=0), max(heights, default=0))

    def y_of(value: int) -> float:
        return round(
            chart.plot_top + (top - value) / (top - bottom) * chart.plot_height, 2
        )

    chart.zero_y = y_of(0)
    tick_fmt = tick_fmt or (lambda value, _step: fmt(value))
    chart.ticks = [
        Tick(y=y_of(value), label=tick_fmt(value, step))
        for value in range(bottom, top + step, step)
    ]
    longest = max(len(tick.label) for tick in chart.ticks)
    chart.plot_left = max(MIN_MARGIN_LEFT, longest * CHAR_WIDTH + 12)
    slot = (chart.plot_right - chart.plot_left) / count
    if stacked:
        bar_width = round(slot * 0.72, 2)
    else:
        bar_width = round(max(1.0, slot * 0.8 / max(1, len(series))), 2)
    label_every = label_every or max(1, -(-count // MAX_X_LABELS))
    for i, label in enumerate(labels):
        slot_x = chart.plot_left + i * slot
        rects = []
        below = 0
        for j, s in enumerate(series):
            value = s.values[i]
            if stacked:
                if not value:
                    continue
                x = slot_x + (slot - bar_width) / 2
                y, y_bottom = y_of(below + value), y_of(below)
                below += value
            else:
                x = slot_x + slot * 0.1 + j * bar_width
                y, y_bottom = y_of(max(value, 0)), y_of(min(value, 0))
            rects.append(
                Rect(
                    x=round(x, 2),
                    y=y,
                    width=bar_width,
                    height=round(max(y_bottom - y, 0.0), 2),
                    color=s.color,
                    title=f"{label}, {s.name}: {fmt(value)}",
                )
            )
        chart.columns.append(
            Column(
                x=round(slot_x, 2),
                width=round(slot, 2),
                title=(
                    _("%(label)s: %(amount)s in total")
                    % {"label": label, "amount": fmt(below)}
                    if stacked
                    else ""
                ),
                rects=rects,
            )
        )
        if (count - 1 - i) % label_every == 0:
            x = round(slot_x + slot / 2, 2)
            if x + len(label) * CHAR_WIDTH / 2 > chart.width:
                # Centred, the last label would run off the drawing.
                chart.x_labels.append(XLabel(chart.plot_right, label, "end"))
            else:
                chart.x_labels.append(XLabel(x=x, label=label))


def _laid_out(
    chart: BarChart, *, labels: Sequence[str], label_every: int | None, **drawing
) -> BarChart:
    """Lay `chart` out at every width of LAYOUTS: `chart` is the widest, its
    `narrower` the others, each with at most its number of x-axis labels."""
    count = max(1, len(labels))
    for name, width, max_labels in LAYOUTS:
        if name == chart.layout:
            drawn = chart
        else:
            drawn = replace(
                chart,
                layout=name,
                width=width,
                plot_right=width - MARGIN_RIGHT,
                columns=[],
                ticks=[],
                x_labels=[],
                narrower=[],
            )
            chart.narrower.append(drawn)
        if label_every:
            # Keep the caller's rhythm (e.g. weekly), in multiples of it.
            shown = -(-count // label_every)
            every = label_every * -(-shown // max_labels)
        else:
            every = max(1, -(-count // max_labels))
        _layout(drawn, labels=labels, label_every=every, **drawing)
    return chart


def grouped_bars(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[int], str],
    unit: str = "",
    tick_fmt: Callable[[int, int], str] | None = None,
) -> BarChart:
    """Bars for each category (label), one per series side by side; values
    may be negative (a margin below zero)."""
    series = _colored(series)
    totals = {s.name: sum(s.values) for s in series}
    summary = "; ".join(f"{name} {fmt(total)}" for name, total in totals.items())
    chart = BarChart(
        title=title,
        aria_label=_("%(title)s, %(span)s. Totals: %(totals)s.")
        % {
            "title": title,
            "span": _counted(len(labels), unit or "periods"),
            "totals": summary,
        },
        legend=[LegendItem(s.name, s.color, fmt(totals[s.name])) for s in series],
        table_header=["", *[s.name for s in series]],
        table_rows=[
            [label, *[fmt(s.values[i]) for s in series]]
            for i, label in enumerate(labels)
        ],
    )
    return _laid_out(
        chart,
        labels=labels,
        series=series,
        fmt=fmt,
        tick_fmt=tick_fmt,
        label_every=None,
        stacked=False,
    )


def _ranked(series: Sequence[Series], max_series: int) -> list[Series]:
    """The biggest series first, the rest folded into "Other" so the colours
    stay few enough to tell apart."""
    ranked = sorted(series, key=lambda s: (-sum(s.values), s.name))
    if len(ranked) > max_series:
        kept, rest = ranked[: max_series - 1], ranked[max_series - 1 :]
        other = [sum(values) for values in zip(*(s.values for s in rest), strict=True)]
        ranked = [*kept, Series(str(OTHER_LABEL), other, OTHER_COLOR)]
    return _colored(ranked)


def stacked_bars(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[int], str] = usd,
    tick_fmt: Callable[[int, int], str] | None = usd_tick,
    what: str,
    unit: str = "days",
    category: str = "",
    label_every: int | None = None,
    max_series: int = len(PALETTE),
) -> BarChart:
    """
    Amounts per category (e.g. spend per day) stacked by series, largest
    series at the bottom; `what` names the series kind (e.g. "model"). The
    table leaves out categories with nothing in them; its first column is
    headed `category` (by default "Day").
    """
    ranked = _ranked(series, max_series)
    totals = [sum(s.values[i] for s in ranked) for i in range(len(labels))]
    grand_total = sum(totals)
    if not ranked or grand_total == 0:
        return BarChart(
            title=title,
            aria_label=_("%(title)s: no spend in the last %(span)s.")
            % {"title": title, "span": _counted(len(labels), unit)},
            empty=True,
        )
    busiest = max(range(len(labels)), key=lambda i: (totals[i], i))
    largest = ranked[0]
    chart = BarChart(
        title=title,
        aria_label=_(
            "%(title)s: %(total)s over the last %(span)s across %(series)s; "
            "the most on %(busiest)s (%(busiest_total)s). "
            "Largest: %(largest)s (%(largest_total)s)."
        )
        % {
            "title": title,
            "total": fmt(grand_total),
            "span": _counted(len(labels), unit),
            "series": _counted(len(series), what),
            "busiest": labels[busiest],
            "busiest_total": fmt(totals[busiest]),
            "largest": largest.name,
            "largest_total": fmt(sum(largest.values)),
        },
        legend=[LegendItem(s.name, s.color, fmt(sum(s.values))) for s in ranked],
        table_header=[category or _("Day"), *[s.name for s in ranked], _("Total")],
        table_rows=[
            [label, *[fmt(s.values[i]) for s in ranked], fmt(totals[i])]
            for i, label in enumerate(labels)
            if totals[i]
        ],
    )
    return _laid_out(
        chart,
        labels=labels,
        series=ranked,
        fmt=fmt,
        tick_fmt=tick_fmt,
        label_every=label_every,
        stacked=True,
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
    color: str = PALETTE[0]
    layout: str = HBAR_LAYOUTS[0][0]
    # Characters of a label this drawing has room for.
    label_chars: int = HBAR_LAYOUTS[0][3]
    narrower: list["HChart"] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.bars

    @property
    def layouts(self) -> list["HChart"]:
        """Every drawing of the chart, the widest (this one) first."""
        return [self, *self.narrower]


def _hbars(
    items: Sequence[tuple[str, int]], fmt, width: int, label_width: int
) -> list[HBar]:
    largest = max((value for _, value in items), default=0) or 1
    span = width - label_width - HBAR_VALUE
    return [
        HBar(
            label=label,
            y=i * HBAR_ROW,
            width=round(max(value, 0) / largest * span, 2),
            value=fmt(value),
        )
        for i, (label, value) in enumerate(items)
    ]


def horizontal_bars(
    *,
    title: str,
    items: Sequence[tuple[str, int]],
    fmt: Callable[[int], str],
    name: str,
) -> HChart:
    """One bar per item, longest first as given (e.g. top tenants by spend)."""
    listed = ", ".join(f"{label} {fmt(value)}" for label, value in items[:5])
    (layout, width, label_width, label_chars), *narrower = HBAR_LAYOUTS
    chart = HChart(
        title=title,
        aria_label=_("%(title)s: %(items)s.")
        % {"title": title, "items": listed or _("none")},
        width=width,
        height=max(1, len(items)) * HBAR_ROW,
        bars=_hbars(items, fmt, width, label_width),
        bar_height=HBAR_ROW - 8,
        label_width=label_width,
        table_header=["", name],
        table_rows=[[label, fmt(value)] for label, value in items],
        layout=layout,
        label_chars=label_chars,
    )
    chart.narrower = [
        replace(
            chart,
            layout=layout,
            width=width,
            bars=_hbars(items, fmt, width, label_width),
            label_width=label_width,
            label_chars=label_chars,
            narrower=[],
        )
        for layout, width, label_width, label_chars in narrower
    ]
    return chart
