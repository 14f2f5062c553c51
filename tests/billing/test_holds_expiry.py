"""Holds left behind by a dead process, the sweep that frees them, the audit."""

from datetime import timedelta
from io import StringIO

import pytest
from celery.schedules import maybe_schedule
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db.models import F
from django.utils import timezone

from billing.models import Hold, Wallet
from billing.money import usd_to_nano
from billing.tasks import release_expired_holds

ONE_USD = usd_to_nano("1")


def audit() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("billing_audit", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def failing_audit() -> tuple[CommandError, str]:
    err = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("billing_audit", stdout=StringIO(), stderr=err)
    return excinfo.value, err.getvalue()


def abandon(request_id: str, ago: timedelta = timedelta(seconds=1)) -> None:
    """Make a hold look like its process died mid-request long ago."""
    Hold.objects.filter(request_id=request_id).update(expires_at=timezone.now() - ago)


def test_the_audit_fails_on_a_hold_left_behind(money, alice):
    assert money.reserve(alice, "req-killed-midway", ONE_USD)
    abandon("req-killed-midway")
    error, stderr = failing_audit()
    assert error.returncode != 0
    assert "1 problem" in str(error)
    assert f"tenant {alice.tenant.pk}:" in stderr
    assert "hold req-killed-midway" in stderr
    assert "expired" in stderr


def test_the_sweep_releases_a_hold_left_behind(money, alice):
    balance = alice.wallet.balance
    assert money.reserve(alice, "req-killed-midway", ONE_USD)
    abandon("req-killed-midway")
    result = release_expired_holds.apply()
    assert result.successful()
    assert result.get() == 1
    wallet = alice.wallet
    assert wallet.held == 0
    assert wallet.balance == balance
    assert not Hold.objects.exists()
    out, _ = audit()
    assert out.startswith("OK")


def test_the_sweep_leaves_live_holds_alone(money, alice, bob):
    assert money.reserve(alice, "req-dead", ONE_USD)
    assert money.reserve(alice, "req-alive", 2 * ONE_USD)
    assert money.reserve(bob, "req-bob", 5)
    abandon("req-dead", ago=timedelta(hours=1))
    assert release_expired_holds.apply().get() == 1
    assert set(Hold.objects.values_list("request_id", flat=True)) == {
        "req-alive",
        "req-bob",
    }
    assert alice.wallet.held == 2 * ONE_USD
    assert bob.wallet.held == 5
    out, _ = audit()
    assert out.startswith("OK")


def test_a_second_sweep_finds_nothing_to_release(money, alice):
    assert money.reserve(alice, "req-dead", ONE_USD)
    abandon("req-dead")
    assert release_expired_holds.apply().get() == 1
    assert release_expired_holds.apply().get() == 0
    assert alice.wallet.held == 0
    audit()


def test_a_new_hold_lives_for_the_configured_time(money, alice, settings):
    settings.SWITCHBOARD_HOLD_TTL_SECONDS = 120
    before = timezone.now()
    assert money.reserve(alice, "req-1", ONE_USD)
    hold = Hold.objects.get(request_id="req-1")
    assert before + timedelta(seconds=120) <= hold.expires_at
    assert hold.expires_at <= timezone.now() + timedelta(seconds=120)


def test_the_sweep_runs_on_the_beat_schedule():
    entries = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "billing.tasks.release_expired_holds"
    ]
    assert len(entries) == 1
    assert release_expired_holds.name == "billing.tasks.release_expired_holds"
    # It must run well within a hold's lifetime to be of any use.
    every = maybe_schedule(entries[0]["schedule"]).run_every.total_seconds()
    assert 0 < every < settings.SWITCHBOARD_HOLD_TTL_SECONDS


def test_the_audit_lists_a_tenant_whose_balance_moved_behind_the_ledgers_back(
    alice, bob
):
    out, _ = audit()
    assert out.startswith("OK: 2 wallets")
    Wallet.objects.filter(tenant=bob.tenant).update(balance=F("balance") + 1)
    error, stderr = failing_audit()
    assert error.returncode != 0
    assert f"tenant {bob.tenant.pk}: balance" in stderr
    assert f"tenant {alice.tenant.pk}:" not in stderr


def test_the_audit_lists_a_tenant_whose_held_amount_disagrees_with_its_holds(
    money, alice, bob
):
    assert money.reserve(alice, "req-1", 7)
    Wallet.objects.filter(tenant=alice.tenant).update(held=0)
    _, stderr = failing_audit()
    assert f"tenant {alice.tenant.pk}: held 0 != sum of holds 7" in stderr
    assert f"tenant {bob.tenant.pk}:" not in stderr
