"""
Settlements the database could not take wait in the journal on local disk
and are settled exactly once when it is back.
"""

import os
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing import journal
from billing.models import LedgerEntry
from billing.selectors import wallet_drifts
from relay.models import UsageRecord
from tests.billing.conftest import usage_record


@pytest.fixture(autouse=True)
def journal_dir(settings, tmp_path):
    settings.SWITCHBOARD_JOURNAL_DIR = tmp_path / "journal"
    return settings.SWITCHBOARD_JOURNAL_DIR


def journaled(customer, request_id, cost, owner="host:1:1"):
    record = usage_record(customer, request_id, cost)
    journal.append(journal.entry_of(record, "gpt-4.1-mini", True), owner=owner)
    return record


def test_a_journaled_settlement_is_settled_once_on_replay(alice, journal_dir):
    before = alice.wallet.balance
    journaled(alice, "req-journaled", 1_500)
    assert journal.pending() and journal.depth() == 1

    assert journal.replay() == 1

    record = UsageRecord.objects.get(request_id="req-journaled")
    assert (record.cost, record.charged, record.prompt_tokens) == (1_500, 1_500, 10)
    assert LedgerEntry.objects.get(reference="usage:req-journaled").amount == -1_500
    assert alice.wallet.balance == before - 1_500
    assert not journal.pending() and journal.depth() == 0
    assert list(journal_dir.iterdir()) == []
    assert wallet_drifts() == []
    assert journal.replay() == 0


def test_an_entry_journaled_twice_or_replayed_twice_is_charged_once(alice):
    before = alice.wallet.balance
    journaled(alice, "req-twice", 700)
    journaled(alice, "req-twice", 700, owner="host:2:2")

    journal.replay()
    journaled(alice, "req-twice", 700)  # a replay killed before it unlinked
    journal.replay()

    assert UsageRecord.objects.filter(request_id="req-twice").count() == 1
    assert LedgerEntry.objects.filter(reference="usage:req-twice").count() == 1
    assert alice.wallet.balance == before - 700


def test_an_entry_the_database_refuses_is_kept_aside_and_the_audit_says_so(
    alice, bob, journal_dir
):
    journaled(alice, "req-first", 100)
    gone = usage_record(bob, "req-refused", 100)
    gone.tenant_id = 999_999  # no such wallet: the settlement fails
    journal.append(journal.entry_of(gone, "x", True), owner="host:1:1")
    journaled(alice, "req-after", 100)

    assert journal.replay() == 2

    assert UsageRecord.objects.filter(request_id="req-first").exists()
    assert UsageRecord.objects.filter(request_id="req-after").exists()
    assert journal.depth() == 0 and journal.unsettled() == 1
    assert b"req-refused" in (journal_dir / journal.UNSETTLED).read_bytes()
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("billing_audit", stdout=StringIO(), stderr=err)
    assert "1 settlements could not be replayed" in err.getvalue()


def test_a_writer_whose_file_was_claimed_writes_a_new_one(alice, journal_dir):
    journaled(alice, "req-a", 100)
    claimed = next(journal._claims())
    journaled(alice, "req-b", 100)

    assert sorted(p.suffix for p in journal_dir.iterdir()) == [".claimed", ".jsonl"]
    assert b"req-b" not in claimed.read_bytes()


def test_a_claim_left_by_a_dead_replayer_is_replayed_after_a_minute(alice, journal_dir):
    journaled(alice, "req-abandoned", 100)
    claimed = next(journal._claims())
    assert journal.replay() == 0  # fresh: its replayer may still be at work

    old = time.time() - journal.STALE_CLAIM_SECONDS - 1
    os.utime(claimed, (old, old))

    assert journal.replay() == 1
    assert UsageRecord.objects.filter(request_id="req-abandoned").exists()
