"""
The price catalog as a CSV file: exported as it is now, and an upload read
into rows for billing.price_import, every bad line reported with its number.
Prices are Decimal from the text in the file: never a float.
"""

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from billing.models import ModelPrice, Prices
from billing.price_changes import SETTING_COLUMNS, price_text
from billing.price_import import PriceImportError, PriceRow
from console.filters import moment_parse

# The price fields a CSV row and the schedule form carry (image tables are
# edited in the admin): USD amounts, and the prompt tokens above which the
# long-context ones apply.
_FEE = Prices.USD_FIELDS.index("per_request_usd") + 1
PRICE_COLUMNS = (
    *Prices.USD_FIELDS[:_FEE],
    Prices.CACHE_HIT_FIELD,
    *Prices.USD_FIELDS[_FEE:],
)
THRESHOLD_COLUMN = "long_context_threshold"
OPTIONAL_PRICES = (
    "cached_input_per_mtok",
    "cache_write_per_mtok",
    "image_input_per_mtok",
)
# Empty: each falls back as its field's help text says; a long-context tier
# needs a threshold, its input and its output (billing.models.Prices).
OPTIONAL_NEW_PRICES = (
    "cache_write_1h_per_mtok",
    "cached_image_input_per_mtok",
    *Prices.LONG_FIELDS,
)
# Empty or left out: 0.
FLAT_PRICES = Prices.FLAT_FIELDS
_BASE_PRICES = tuple(c for c in PRICE_COLUMNS if c not in Prices.LONG_FIELDS)
CSV_COLUMNS = (
    "model",
    *_BASE_PRICES,
    THRESHOLD_COLUMN,
    *Prices.LONG_FIELDS,
    *SETTING_COLUMNS,
    "effective_at",
)
# Columns files exported before they existed lack: left out, a row leaves
# them as they are (a new model: empty).
LATER_COLUMNS = (*OPTIONAL_NEW_PRICES, Prices.CACHE_HIT_FIELD, THRESHOLD_COLUMN)

MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_ROWS = 5000
DECIMAL = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")
TRUE = ("true", "yes", "1", "y")
FALSE = ("false", "no", "0", "n")
_MODEL_MAX_LENGTH = ModelPrice._meta.get_field("model").max_length


# -- export --------------------------------------------------------------


def price_csv_rows() -> Iterator[list[str]]:
    """The header, then one row per catalog model with its prices now."""
    yield list(CSV_COLUMNS)
    for price in ModelPrice.objects.order_by("model"):
        yield [
            price.model,
            *[price_text(getattr(price, column)) for column in CSV_COLUMNS[1:-1]],
            "",
        ]


# -- parsing -------------------------------------------------------------


def _decimal(raw: str, column: str) -> Decimal:
    if not DECIMAL.fullmatch(raw):
        raise ValueError(
            f'{column}: "{raw}" is not a price in USD such as "2.50" or "0.075" '
            "(digits and a decimal point only)."
        )
    return Decimal(raw)


def _whole(raw: str, column: str) -> int:
    # Zero is allowed: embedding models have no output tokens.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise ValueError(f'{column}: "{raw}" is not a whole number.')
    return int(raw)


def _bool(raw: str, column: str) -> bool:
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise ValueError(f'{column}: "{raw}" is not true or false.')


def _moment(raw: str, column: str) -> datetime:
    try:
        return moment_parse(raw)
    except (ValueError, OverflowError):
        raise ValueError(
            f'{column}: "{raw}" is not an ISO 8601 date or time such as '
            '"2025-07-01T00:00:00Z"; leave it empty for now.'
        ) from None


def _threshold(raw: str, column: str) -> int:
    value = _whole(raw, column)
    if value < 1:
        raise ValueError(f"{column}: a number of prompt tokens of at least 1.")
    return value


def _row(
    line: int, raw: dict, absent: tuple[str, ...] = ()
) -> tuple[PriceRow | None, list[str]]:
    problems: list[str] = []
    cells = {column: (raw.get(column) or "").strip() for column in CSV_COLUMNS}
    model = cells["model"]
    if not model:
        problems.append("model: required.")
    elif not model.isprintable() or len(model) > _MODEL_MAX_LENGTH:
        problems.append(f"model: at most {_MODEL_MAX_LENGTH} printable characters.")
    prices: dict = {}
    for column in PRICE_COLUMNS:
        if column in absent:
            continue
        text = cells[column]
        if not text:
            if column in OPTIONAL_PRICES or column in OPTIONAL_NEW_PRICES:
                prices[column] = None
            elif column in FLAT_PRICES:
                prices[column] = Decimal(0)
            else:
                problems.append(f"{column}: required.")
            continue
        try:
            prices[column] = _decimal(text, column)
        except ValueError as exc:
            problems.append(str(exc))
    if THRESHOLD_COLUMN not in absent:
        prices[THRESHOLD_COLUMN] = None
        if cells[THRESHOLD_COLUMN]:
            try:
                prices[THRESHOLD_COLUMN] = _threshold(
                    cells[THRESHOLD_COLUMN], THRESHOLD_COLUMN
                )
            except ValueError as exc:
                problems.append(str(exc))
    settings: dict = {}
    for column, parse in (
        ("context_window", _whole),
        ("max_output_tokens", _whole),
        ("is_active", _bool),
    ):
        if cells[column]:
            try:
                settings[column] = parse(cells[column], column)
            except ValueError as exc:
                problems.append(str(exc))
    effective_at = None
    if cells["effective_at"]:
        try:
            effective_at = _moment(cells["effective_at"], "effective_at")
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        return None, problems
    return PriceRow(line, model, prices, settings, effective_at), []


def price_rows_parse(data: bytes) -> list[PriceRow]:
    """Parse an uploaded CSV; raise PriceImportError listing every bad line."""
    if len(data) > MAX_IMPORT_BYTES:
        raise PriceImportError([(0, f"The file is over {MAX_IMPORT_BYTES} bytes.")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PriceImportError([(0, "The file is not UTF-8 text.")]) from None
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="_extra")
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header
    absent = tuple(column for column in LATER_COLUMNS if column not in header)
    missing = [
        column
        for column in CSV_COLUMNS
        if column not in header and column not in absent
    ]
    unknown = [column for column in header if column not in CSV_COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        parts = []
        if missing:
            parts.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown columns: {', '.join(unknown)}")
        if len(set(header)) != len(header):
            parts.append("a column appears twice")
        raise PriceImportError(
            [(1, "; ".join(parts) + f". Expected: {','.join(CSV_COLUMNS)}.")]
        )
    rows, errors = [], []
    try:
        for raw in reader:
            line = reader.line_num
            if len(rows) + len(errors) >= MAX_IMPORT_ROWS:
                errors.append((line, f"More than {MAX_IMPORT_ROWS} rows."))
                break
            if raw.get("_extra"):
                errors.append((line, "More cells than columns."))
                continue
            row, problems = _row(line, raw, absent)
            errors.extend((line, problem) for problem in problems)
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        errors.append((reader.line_num, f"Not valid CSV: {exc}."))
    if not rows and not errors:
        errors.append((2, "The file has no rows."))
    if errors:
        raise PriceImportError(errors)
    return rows
