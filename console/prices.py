"""
The price catalog as staff change it: a new price now or from a set time,
pending changes cancelled, and the whole catalog exported and imported as
CSV.

A price set "now" is written to the catalog row at once (the relay picks it
up within SWITCHBOARD_CATALOG_CACHE_SECONDS); a price set for later is a
PriceChange the relay charges exactly from its time. Usage records keep the
prices they were charged at, so neither rewrites the past. Prices are
Decimal from the text typed to the database: never a float.

An import is checked whole before anything is written: one bad row and
nothing changes, and every error is reported with its line number.
"""

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from billing.models import ModelPrice, PriceChange, Prices
from billing.price_changes import price_change_schedule
from console.filters import moment_parse

# The price fields a CSV row and the schedule form carry (image tables are
# edited in the admin).
PRICE_COLUMNS = Prices.USD_FIELDS
OPTIONAL_PRICES = (
    "cached_input_per_mtok",
    "cache_write_per_mtok",
    "image_input_per_mtok",
)
# Fields that change at once, never on a schedule.
SETTING_COLUMNS = ("context_window", "max_output_tokens", "is_active")
CSV_COLUMNS = ("model", *PRICE_COLUMNS, *SETTING_COLUMNS, "effective_at")

MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_ROWS = 5000
DECIMAL = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")
TRUE = ("true", "yes", "1", "y")
FALSE = ("false", "no", "0", "n")
_MODEL_MAX_LENGTH = ModelPrice._meta.get_field("model").max_length


class PriceImportError(ValueError):
    """The file cannot be imported; `errors` lists (line, message)."""

    def __init__(self, errors: list[tuple[int, str]]):
        self.errors = errors
        super().__init__(
            "; ".join(f"line {line}: {message}" for line, message in errors)
        )


@dataclass
class PriceRow:
    line: int
    model: str
    prices: dict
    settings: dict
    effective_at: datetime | None  # None: now


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    scheduled: list[tuple[str, datetime]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


# -- export --------------------------------------------------------------


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        # Exact and without trailing zeros: 2.000 -> "2", 0.075 -> "0.075".
        return f"{value.normalize():f}"
    return str(value)


def price_csv_rows() -> Iterator[list[str]]:
    """The header, then one row per catalog model with its prices now."""
    yield list(CSV_COLUMNS)
    for price in ModelPrice.objects.order_by("model"):
        yield [
            price.model,
            *[_cell(getattr(price, column)) for column in PRICE_COLUMNS],
            *[_cell(getattr(price, column)) for column in SETTING_COLUMNS],
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


def _row(line: int, raw: dict) -> tuple[PriceRow | None, list[str]]:
    problems: list[str] = []
    cells = {column: (raw.get(column) or "").strip() for column in CSV_COLUMNS}
    model = cells["model"]
    if not model:
        problems.append("model: required.")
    elif not model.isprintable() or len(model) > _MODEL_MAX_LENGTH:
        problems.append(f"model: at most {_MODEL_MAX_LENGTH} printable characters.")
    prices: dict = {}
    for column in PRICE_COLUMNS:
        text = cells[column]
        if not text:
            if column in OPTIONAL_PRICES:
                prices[column] = None
            elif column == "per_request_usd":
                prices[column] = Decimal(0)
            else:
                problems.append(f"{column}: required.")
            continue
        try:
            prices[column] = _decimal(text, column)
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
    missing = [column for column in CSV_COLUMNS if column not in header]
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
            row, problems = _row(line, raw)
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


# -- applying ------------------------------------------------------------


def _messages(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [
            f"{name}: {message}" if name != "__all__" else message
            for name, messages in error.message_dict.items()
            for message in messages
        ]
    return list(error.messages)


def _plan(rows: list[PriceRow], now: datetime) -> list[tuple[int, str]]:
    """Check `rows` against the catalog as it is; return the errors."""
    errors: list[tuple[int, str]] = []
    names = {row.model for row in rows}
    existing = {p.model: p for p in ModelPrice.objects.filter(model__in=names)}
    pending = set(
        PriceChange.objects.filter(
            model_price__model__in=names, applied_at__isnull=True
        ).values_list("model_price__model", "effective_at")
    )
    seen: set[tuple[str, datetime | None]] = set()
    for row in rows:
        key = (row.model, row.effective_at)
        if key in seen:
            moment = "now" if row.effective_at is None else row.effective_at.isoformat()
            errors.append((row.line, f"{row.model} appears twice for {moment}."))
            continue
        seen.add(key)
        current = existing.get(row.model)
        if row.effective_at is not None and row.effective_at <= now:
            errors.append(
                (
                    row.line,
                    "effective_at is in the past; leave it empty to change the "
                    "price now.",
                )
            )
            continue
        if current is None:
            if row.effective_at is not None:
                errors.append(
                    (
                        row.line,
                        f"{row.model} is a new model: it is added at once, so leave "
                        "effective_at empty.",
                    )
                )
                continue
            candidate = ModelPrice(model=row.model, **row.prices, **row.settings)
            try:
                candidate.full_clean(validate_unique=False)
            except ValidationError as exc:
                errors.extend((row.line, message) for message in _messages(exc))
            continue
        if row.effective_at is None:
            candidate = ModelPrice(
                pk=current.pk,
                model=current.model,
                **{
                    name: getattr(current, name)
                    for name in ("image_output_tokens", "image_prices")
                },
                **{**_settings_of(current), **row.settings},
                **row.prices,
            )
            try:
                candidate.full_clean(validate_unique=False)
            except ValidationError as exc:
                errors.extend((row.line, message) for message in _messages(exc))
            continue
        changed = [
            name
            for name, value in row.settings.items()
            if getattr(current, name) != value
        ]
        if changed:
            errors.append(
                (
                    row.line,
                    f"{', '.join(changed)} change at once, never on a schedule: "
                    "put them on a row without effective_at.",
                )
            )
        if (row.model, row.effective_at) in pending:
            errors.append(
                (
                    row.line,
                    f"A change of {row.model} is already scheduled for "
                    f"{row.effective_at.isoformat()}.",
                )
            )
        candidate = PriceChange(model_price=current, effective_at=row.effective_at)
        for name in PriceChange.PRICE_FIELDS:
            setattr(candidate, name, row.prices.get(name, getattr(current, name)))
        try:
            candidate.full_clean(exclude=["created_by", "model_price"])
        except ValidationError as exc:
            errors.extend((row.line, message) for message in _messages(exc))
    return errors


def _settings_of(price: ModelPrice) -> dict:
    return {name: getattr(price, name) for name in SETTING_COLUMNS}


@transaction.atomic
def price_update_now(
    *, model_price: ModelPrice, prices: dict, settings: dict, actor, reason: str
) -> bool:
    """
    Change a model's prices (and settings) from now on. Return False if
    nothing differs. Raise ValidationError for values the catalog refuses.
    """
    values = {**prices, **settings}
    before = {name: getattr(model_price, name) for name in values}
    changed = {name: v for name, v in values.items() if before[name] != v}
    if not changed:
        return False
    for name, value in changed.items():
        setattr(model_price, name, value)
    model_price.full_clean()
    model_price.save()
    audit_record(
        actor=actor,
        action="price.update",
        target=f"modelprice:{model_price.pk}",
        summary=f"changed {', '.join(sorted(changed))} of {model_price} from now",
        reason=reason,
        data={
            name: {"from": _cell(before[name]), "to": _cell(value)}
            for name, value in sorted(changed.items())
        },
    )
    return True


@transaction.atomic
def price_create(*, model: str, prices: dict, settings: dict, actor, reason: str):
    price = ModelPrice(model=model, **prices, **settings)
    price.full_clean()
    price.save()
    audit_record(
        actor=actor,
        action="price.create",
        target=f"modelprice:{price.pk}",
        summary=f"added {model} to the catalog",
        reason=reason,
        data={name: _cell(value) for name, value in {**prices, **settings}.items()},
    )
    return price


@transaction.atomic
def price_change_cancel(*, change: PriceChange, actor, reason: str) -> bool:
    """Cancel a change that has not taken effect; False if it has or is gone."""
    change = (
        PriceChange.objects.select_for_update()
        .select_related("model_price")
        .filter(pk=change.pk, applied_at__isnull=True, effective_at__gt=timezone.now())
        .first()
    )
    if change is None:
        return False
    audit_record(
        actor=actor,
        action="price.cancel",
        target=f"modelprice:{change.model_price_id}",
        summary=f"cancelled the change of {change.model_price} due "
        f"{change.effective_at.isoformat()}",
        reason=reason,
    )
    change.delete()
    return True


@transaction.atomic
def prices_import(*, data: bytes, actor, reason: str) -> ImportResult:
    """
    Import a catalog CSV (CSV_COLUMNS): new models are added, existing ones
    change now (empty effective_at) or from their effective_at. Nothing is
    written unless every row is valid; raise PriceImportError otherwise.
    """
    rows = price_rows_parse(data)
    now = timezone.now()
    errors = _plan(rows, now)
    if errors:
        raise PriceImportError(errors)
    result = ImportResult()
    existing = {
        p.model: p
        for p in ModelPrice.objects.select_for_update().filter(
            model__in={row.model for row in rows}
        )
    }
    try:
        for row in rows:
            current = existing.get(row.model)
            if current is None:
                existing[row.model] = price_create(
                    model=row.model,
                    prices=row.prices,
                    settings=row.settings,
                    actor=actor,
                    reason=reason,
                )
                result.created.append(row.model)
            elif row.effective_at is None:
                if price_update_now(
                    model_price=current,
                    prices=row.prices,
                    settings=row.settings,
                    actor=actor,
                    reason=reason,
                ):
                    result.updated.append(row.model)
                else:
                    result.unchanged.append(row.model)
            else:
                price_change_schedule(
                    model_price=current,
                    effective_at=row.effective_at,
                    values=row.prices,
                    actor=actor,
                    reason=reason,
                )
                result.scheduled.append((row.model, row.effective_at))
    except ValidationError as exc:
        # The catalog changed under the check (a concurrent edit): undo all.
        raise PriceImportError([(row.line, m) for m in _messages(exc)]) from exc
    audit_record(
        actor=actor,
        action="price.import",
        summary=(
            f"imported prices: {len(result.created)} added, {len(result.updated)} "
            f"changed now, {len(result.scheduled)} scheduled, "
            f"{len(result.unchanged)} unchanged"
        ),
        reason=reason,
        data={
            "created": result.created,
            "updated": result.updated,
            "scheduled": [[m, t.isoformat()] for m, t in result.scheduled],
        },
    )
    return result
