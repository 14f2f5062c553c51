"""
The price catalog as staff change it: new prices now or from a set time, a
model added, a pending change cancelled (billing.price_import brings whole
files of rows).

A price set "now" is written to the catalog row at once (the relay picks it
up within SWITCHBOARD_CATALOG_CACHE_SECONDS); a price set for later is a
PriceChange the relay charges exactly from its time, and that takes effect
on the catalog row at that time. Usage records keep the prices they were
charged at, so neither rewrites the past. Prices are Decimal from the text
typed to the database: never a float.
"""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from billing.models import ModelPrice, PriceChange, Prices

# Fields that change at once, never on a schedule.
SETTING_COLUMNS = ("context_window", "max_output_tokens", "is_active")


def price_text(value) -> str:
    """A catalog value as text, as the audit log and the CSV export show it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        # Exact and without trailing zeros: 2.000 -> "2", 0.075 -> "0.075".
        return f"{value.normalize():f}"
    return str(value)


@transaction.atomic
def price_change_schedule(
    *,
    model_price: ModelPrice,
    effective_at: datetime,
    values: dict,
    actor,
    reason: str = "",
) -> PriceChange:
    """
    Schedule new prices for a model from `effective_at`. `values` holds the
    price fields (Prices.PRICE_FIELDS) to change; the others keep the model's
    current figures. Raise ValidationError for bad prices or a past time.
    """
    unknown = set(values) - set(Prices.PRICE_FIELDS)
    if unknown:
        raise ValidationError(f"Not price fields: {', '.join(sorted(unknown))}.")
    if effective_at < timezone.now():
        raise ValidationError(
            {"effective_at": "A price change cannot take effect in the past."}
        )
    change = PriceChange(model_price=model_price, effective_at=effective_at)
    for field in Prices.PRICE_FIELDS:
        setattr(change, field, values.get(field, getattr(model_price, field)))
    change.full_clean(exclude=["created_by"])
    change.created_by = actor if actor is not None and actor.is_authenticated else None
    change.save()
    audit_record(
        actor=actor,
        action="price.schedule",
        target=f"modelprice:{model_price.pk}",
        summary=f"new prices for {model_price} from {effective_at.isoformat()}",
        reason=reason,
        data={field: str(values[field]) for field in sorted(values)},
    )
    return change


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
            name: {"from": price_text(before[name]), "to": price_text(value)}
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
        data={
            name: price_text(value) for name, value in {**prices, **settings}.items()
        },
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


def price_changes_apply(*, now: datetime | None = None) -> int:
    """Copy every change now in effect onto its catalog row, in time order.
    The relay already charges them from `effective_at`; this makes the
    catalog row (and every page that shows it) say so."""
    now = now or timezone.now()
    applied = 0
    due = PriceChange.objects.filter(applied_at__isnull=True, effective_at__lte=now)
    for change_id in due.order_by("effective_at").values_list("pk", flat=True)[:1000]:
        applied += _apply(change_id, now)
    return applied


@transaction.atomic
def _apply(change_id: int, now: datetime) -> int:
    change = (
        PriceChange.objects.select_for_update()
        .filter(pk=change_id, applied_at__isnull=True)
        .select_related("model_price")
        .first()
    )
    if change is None:
        return 0
    price = change.model_price
    for field in Prices.PRICE_FIELDS:
        setattr(price, field, getattr(change, field))
    price.save()
    change.applied_at = now
    change.save(update_fields=["applied_at"])
    return 1
