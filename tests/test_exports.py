"""The one rule that keeps exported text from running as a spreadsheet formula."""

import pytest

from exports.csv import text_cell


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_text_starting_like_a_formula_is_shown_as_typed(start):
    assert text_cell(f"{start}1+1") == f"'{start}1+1"


@pytest.mark.parametrize(
    "value, cell",
    [("gpt-4.1-mini", "gpt-4.1-mini"), ("a=b", "a=b"), ("", ""), (None, ""), (7, "7")],
)
def test_other_values_are_left_as_they_are(value, cell):
    assert text_cell(value) == cell
