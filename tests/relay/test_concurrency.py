"""Concurrent requests against one wallet: no overdraft, every cent accounted."""

import asyncio
from decimal import Decimal

import httpx
import pytest
from django.core.management import call_command

from billing.models import LedgerEntry, Wallet
from billing.money import NANO_PER_USD, usd_to_nano
from relay import tokens
from relay.models import UsageRecord

MESSAGES = [{"role": "user", "content": "Count to three"}]
MAX_TOKENS = 6
# gpt-4.1-mini: 400 nano-USD per input token, 1,600 per output token. The
# hold counts the prompt's bytes (an upper bound); the fake upstream reports
# its tokens, and answers with all MAX_TOKENS.
HOLD = tokens.estimate_prompt(MESSAGES, count=tokens.estimate) * 400 + MAX_TOKENS * 1600
COST = tokens.estimate_prompt(MESSAGES) * 400 + MAX_TOKENS * 1600


async def fire(relay: str, secret: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(
        timeout=30, limits=httpx.Limits(max_connections=count)
    ) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{relay}/chat/completions",
                    json={
                        "model": "gpt-4.1-mini",
                        "messages": MESSAGES,
                        "max_tokens": MAX_TOKENS,
                        "stream": i % 2 == 0,
                    },
                    headers={"authorization": f"Bearer {secret}"},
                )
                for i in range(count)
            )
        )


@pytest.mark.postgres
def test_fifty_concurrent_requests_never_overdraw(relay, channel, alice, fake):
    # Slow enough that the requests overlap: holds, not settled charges, are
    # what stops the eleventh.
    fake.scenario(latency=0.2)
    Wallet.objects.filter(tenant=alice.tenant).update(balance=0)
    LedgerEntry.objects.all().delete()
    alice.fund(Decimal(HOLD * 10) / NANO_PER_USD, reference="ten-requests")
    start = alice.wallet.balance
    assert start == HOLD * 10

    responses = asyncio.run(fire(relay, alice.secret, 50))

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 402}, statuses
    served = statuses.count(200)
    # The requests overlap, so holds decide: exactly ten fit.
    assert served == 10
    for response in responses:
        if response.status_code == 402:
            assert response.json()["error"]["code"] == "insufficient_balance"
    wallet = alice.wallet
    # The documented bound with the default overdraft limit of $0: never
    # below zero.
    assert wallet.balance >= -usd_to_nano("0")
    assert wallet.held == 0
    charges = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE)
    assert charges.count() == served
    records = UsageRecord.objects.filter(status="ok")
    assert records.count() == served
    # Each settlement wrote its ledger row and its usage record together.
    assert {(f"usage:{r.request_id}", -r.charged) for r in records} == {
        (c.reference, c.amount) for c in charges
    }
    assert start - wallet.balance == -sum(c.amount for c in charges)
    call_command("billing_audit")
