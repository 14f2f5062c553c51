"""
A catalog of price rows imported at once (console.prices reads them from a
CSV file): new models are added, existing ones change now or from a set
time. The rows are checked whole against the catalog before anything is
written: one bad row and nothing changes, and every error is reported with
its line number.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from billing.models import ModelPrice, PriceChange, Prices
from billing.price_changes import (
    SETTING_COLUMNS,
    price_change_schedule,
    price_create,
    price_update_now,
)


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


@transaction.atomic
def prices_import(*, rows: list[PriceRow], actor, reason: str) -> ImportResult:
    """
    Import parsed catalog rows: new models are added, existing ones change
    now (no effective_at) or from their effective_at. Nothing is written
    unless every row is valid; raise PriceImportError otherwise.
    """
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
            # What the row leaves out (the image tables; columns an older
            # export lacks) stays as it is.
            candidate = ModelPrice(
                pk=current.pk,
                model=current.model,
                **{
                    **{name: getattr(current, name) for name in Prices.PRICE_FIELDS},
                    **row.prices,
                },
                **{**_settings_of(current), **row.settings},
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
