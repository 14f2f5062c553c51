"""
A killed worker's holds are released within seconds: each serving process
says it is alive, and the sweep releases the holds of those that stopped.
"""

from datetime import timedelta
from io import StringIO

import httpx
import pytest
from celery.schedules import maybe_schedule
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing import workers
from billing.models import Hold, Worker
from billing.money import usd_to_nano
from billing.selectors import wallet_drifts

ONE_USD = usd_to_nano("1")


def seen(name: str, ago: float) -> None:
    now = timezone.now() - timedelta(seconds=ago)
    Worker.objects.update_or_create(
        name=name, defaults={"started_at": now, "seen_at": now}
    )


def placed(request_id: str, ago: float) -> None:
    """Make a hold look placed `ago` seconds ago."""
    Hold.objects.filter(request_id=request_id).update(
        created_at=timezone.now() - timedelta(seconds=ago)
    )


@pytest.fixture
def bounds(settings):
    settings.SWITCHBOARD_WORKER_DEAD_SECONDS = 20
    settings.SWITCHBOARD_WORKER_SWEEP_SECONDS = 15


def test_the_holds_of_a_silent_worker_are_released_and_it_is_forgotten(
    money, alice, bounds
):
    seen("host:1:1", ago=30)
    assert money.reserve(alice, "req-of-the-dead", ONE_USD, owner="host:1:1")
    placed("req-of-the-dead", ago=25)

    assert workers.holds_release_dead() == 1

    assert not Hold.objects.exists()
    assert alice.wallet.held == 0
    assert not Worker.objects.filter(name="host:1:1").exists()
    assert wallet_drifts() == []


def test_a_live_workers_holds_stay_and_the_audit_counts_them_in_flight(
    money, alice, bounds
):
    seen("host:2:1", ago=2)
    assert money.reserve(alice, "req-in-flight", ONE_USD, owner="host:2:1")
    placed("req-in-flight", ago=600)  # a long stream, its worker alive

    assert workers.holds_release_dead() == 0

    out = StringIO()
    call_command("billing_audit", stdout=out, stderr=StringIO())
    assert "in flight: 1 holds of $1.00" in out.getvalue()
    assert alice.wallet.held == ONE_USD


def test_a_hold_of_a_worker_never_seen_is_released_once_older_than_the_bound(
    money, alice, bounds
):
    assert money.reserve(alice, "req-young", ONE_USD, owner="host:3:1")
    assert money.reserve(alice, "req-old", ONE_USD, owner="host:3:1")
    placed("req-old", ago=21)

    assert workers.holds_release_dead() == 1

    assert list(Hold.objects.values_list("request_id", flat=True)) == ["req-young"]
    assert alice.wallet.held == ONE_USD


def test_holds_without_an_owner_wait_for_their_expiry(money, alice, bounds):
    assert money.reserve(alice, "req-ownerless", ONE_USD)
    placed("req-ownerless", ago=3600)

    assert workers.holds_release_dead() == 0
    assert Hold.objects.count() == 1


def test_the_audit_reports_a_dead_workers_hold_no_sweep_released(money, alice, bounds):
    seen("host:4:1", ago=120)
    assert money.reserve(alice, "req-stuck", ONE_USD, owner="host:4:1")
    placed("req-stuck", ago=100)  # past 20 + 2 x 15 seconds

    err = StringIO()
    with pytest.raises(CommandError):
        call_command("billing_audit", stdout=StringIO(), stderr=err)
    assert "left by the dead worker host:4:1 is not released" in err.getvalue()

    workers.holds_release_dead()
    call_command("billing_audit", stdout=StringIO(), stderr=StringIO())


def test_a_heartbeat_keeps_a_worker_alive_and_retiring_marks_it_dead(
    money, alice, bounds
):
    workers.heartbeat(now=timezone.now() - timedelta(seconds=60))
    workers.heartbeat()
    assert money.reserve(alice, "req-mine", ONE_USD, owner=workers.name())
    placed("req-mine", ago=60)
    assert workers.holds_release_dead() == 0

    workers.retire()

    assert workers.holds_release_dead() == 1
    assert not Worker.objects.exists()


def test_the_relay_writes_its_worker_on_the_holds_it_places(
    relay, alice, channel, fake
):
    fake.scenario(reply="one two three four five six", chunk_delay=0.2)
    body = {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    headers = {"authorization": f"Bearer {alice.secret}"}
    with httpx.stream(
        "POST", f"{relay}/chat/completions", json=body, headers=headers, timeout=10
    ) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        next(chunks)  # under way: its hold is placed
        assert Hold.objects.get().owner == workers.name()
        assert b"[DONE]" in b"".join(chunks)
    assert not Hold.objects.exists()


def test_the_sweep_runs_on_the_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["release-dead-workers-holds"]
    assert entry["task"] == "billing.tasks.release_dead_workers_holds"
    seconds = maybe_schedule(entry["schedule"]).run_every.total_seconds()
    assert seconds == settings.SWITCHBOARD_WORKER_SWEEP_SECONDS


def test_a_hold_whose_reserve_broke_is_released_once_the_database_answers(money, alice):
    # The reserve's connection broke after the hold was placed: the client
    # got a 503 and the request will never settle.
    assert money.reserve(alice, "req-lost-answer", ONE_USD, owner=workers.name())
    workers.release_later(alice.tenant.pk, "req-lost-answer")
    workers.release_later(alice.tenant.pk, "req-never-placed")

    workers._release_pending()

    assert not Hold.objects.exists()
    assert alice.wallet.held == 0
    assert not workers._to_release
