from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey
from relay.models import UpstreamKey, UsageRecord

# last_used_at is for people: a minute's precision spares a write per request.
LAST_USED_PRECISION = timedelta(minutes=1)


def usage_description(record: UsageRecord) -> str:
    """The request as its ledger row tells it: the model, tokens, images."""
    images = ""
    if record.images:
        images = f", {record.images} image{'s' if record.images > 1 else ''}"
    return (
        f"{record.model} ({record.prompt_tokens} in, "
        f"{record.completion_tokens} out{images})"
    )


def api_key_touch(*, key_id: int) -> None:
    """Record that a key was used, at most once per LAST_USED_PRECISION."""
    now = timezone.now()
    ApiKey.objects.filter(pk=key_id).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
    ).update(last_used_at=now)


def upstream_key_disable(*, key_id: int, reason: str) -> bool:
    """Take a key out of rotation after the upstream refused it."""
    updated = UpstreamKey.objects.filter(pk=key_id, is_enabled=True).update(
        is_enabled=False,
        auto_disabled=True,
        disabled_reason=reason[:300],
        disabled_at=timezone.now(),
    )
    return bool(updated)
