"""The charts' own words (empty state, "Other", the table's headings, the
summaries read out by screen readers) follow the page's language."""

from datetime import date

from django.utils import translation

from charts.bars import Series, grouped_bars, horizontal_bars
from portal import selectors
from portal.views.dashboard import spend_chart
from tests.test_i18n import MO, PO

DAYS = [date(2031, 5, 16), date(2031, 5, 17)]


def _busy(models: int = 7) -> selectors.DailySpend:
    return selectors.DailySpend(
        days=DAYS,
        series={f"model-{n}": {DAYS[1]: 2_000_000 * (n + 1)} for n in range(models)},
    )


def test_the_translations_are_compiled():
    assert MO.exists() and MO.stat().st_mtime >= PO.stat().st_mtime


def test_an_empty_chart_says_so_in_either_language():
    empty = selectors.DailySpend(days=DAYS, series={})
    with translation.override("en"):
        english = spend_chart(empty, title="Spend", what="model")
    with translation.override("zh-hans"):
        chinese = spend_chart(empty, title="消费", what="model")
    assert english.aria_label == "Spend: no spend in the last 2 days."
    assert chinese.aria_label == "消费：最近 2 天没有消费。"


def test_a_stacked_chart_speaks_chinese():
    with translation.override("zh-hans"):
        chart = spend_chart(_busy(), title="按模型", what="model")
    assert chart.table_header[0] == "日期" and chart.table_header[-1] == "合计"
    assert chart.legend[-1].name == "其他"
    assert "最近 2 天共" in chart.aria_label and "涉及 7 个模型" in chart.aria_label
    assert "in total" not in chart.columns[1].title
    assert "共" in chart.columns[1].title


def test_the_english_chart_is_unchanged():
    with translation.override("en"):
        chart = spend_chart(_busy(1), title="By model", what="model")
    assert chart.table_header == ["Day", "model-0", "Total"]
    assert chart.aria_label == (
        "By model: $0.0020 over the last 2 days across 1 model; "
        "the most on May 17 ($0.0020). Largest: model-0 ($0.0020)."
    )
    assert chart.columns[1].title == "May 17: $0.0020 in total"


def test_grouped_and_horizontal_summaries_speak_chinese():
    with translation.override("zh-hans"):
        grouped = grouped_bars(
            title="收入",
            labels=["a", "b", "c"],
            series=[Series("收入", [1, 2, 3])],
            fmt=str,
            unit="weeks",
        )
        nobody = horizontal_bars(title="租户", items=[], fmt=str, name="消费")
    assert grouped.aria_label == "收入，3 周。合计：收入 6。"
    assert nobody.aria_label == "租户：无。"
