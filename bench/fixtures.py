"""
Seed the benchmark database, and read back what the relay recorded.

bench/run.py runs this with the relay's own environment (DATABASE_URL and the
keys), so it sees exactly the database the relay serves from:

    python bench/fixtures.py seed http://127.0.0.1:PORT/v1 MODEL
    python bench/fixtures.py stats
    python bench/fixtures.py channel NAME http://127.0.0.1:PORT/s/SCENARIO/v1 MODEL
    python bench/fixtures.py model-stats MODEL

Each prints one JSON object as the last line of stdout.
"""

import json
import os
import sys
from pathlib import Path

# Run as a script, so the project root is not on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db.models import Count, Sum  # noqa: E402

# Enough that no benchmark run can exhaust it, so a 402 always means a bug.
BALANCE_NANO_USD = 10**15


def seed(upstream_url: str, model: str) -> dict:
    """Create a funded tenant, its API key and a channel to the fake upstream."""
    from accounts.services import api_key_create
    from billing.services import wallet_credit
    from onboarding.tenants import tenant_create
    from relay.models import Channel

    tenant = tenant_create(name="bench")
    wallet_credit(
        tenant_id=tenant.pk,
        amount=BALANCE_NANO_USD,
        kind="grant",
        reference="bench-grant",
        description="bench",
    )
    _, secret = api_key_create(tenant=tenant, name="bench")
    channel = Channel(name="fake", kind="openai", base_url=upstream_url)
    channel.model_names = [model]
    channel.save()
    channel.add_key("sk-fake")
    return {"tenant_id": tenant.pk, "api_key": secret}


def stats() -> dict:
    """Summarise the usage records, holds and ledger the relay left behind."""
    from billing.models import Hold, LedgerEntry, Wallet
    from relay.models import UsageRecord

    def grouped(field: str) -> dict:
        rows = UsageRecord.objects.values_list(field).annotate(n=Count("id"))
        return {str(value): n for value, n in rows}

    records = UsageRecord.objects.aggregate(
        n=Count("id"), charged=Sum("charged"), cost=Sum("cost")
    )
    return {
        "usage_records": records["n"],
        "usage_records_streaming": UsageRecord.objects.filter(stream=True).count(),
        "by_status": grouped("status"),
        "by_http_status": grouped("http_status"),
        "by_usage_source": grouped("usage_source"),
        "charged_nano_usd": records["charged"] or 0,
        "cost_nano_usd": records["cost"] or 0,
        "open_holds": Hold.objects.count(),
        "ledger_entries": LedgerEntry.objects.count(),
        "granted_nano_usd": BALANCE_NANO_USD,
        "wallet_balance_nano_usd": sum(
            Wallet.objects.values_list("balance", flat=True)
        ),
        "wallet_held_nano_usd": sum(Wallet.objects.values_list("held", flat=True)),
    }


def add_channel(name: str, upstream_url: str, model: str) -> dict:
    """Add a channel serving `model` only, e.g. from another fake scenario."""
    from relay.models import Channel

    channel = Channel(name=name, kind="openai", base_url=upstream_url)
    channel.model_names = [model]
    channel.save()
    channel.add_key("sk-fake")
    return {"channel_id": channel.pk}


def model_stats(model: str) -> dict:
    """
    What the relay recorded for `model`: records grouped by status, tokens and
    charge, the ledger rows that charged them, and the model's catalog price,
    so that the caller can check every charge against its own arithmetic.
    """
    from billing.models import LedgerEntry, ModelPrice
    from relay.models import UsageRecord

    records = UsageRecord.objects.filter(model=model)
    groups = records.values_list(
        "status", "prompt_tokens", "cached_tokens", "completion_tokens", "charged"
    ).annotate(n=Count("id"))
    references = [
        f"usage:{rid}" for rid in records.values_list("request_id", flat=True)
    ]
    ledger = LedgerEntry.objects.filter(reference__in=references).aggregate(
        n=Count("id"), amount=Sum("amount")
    )
    price = ModelPrice.objects.get(model=model)
    return {
        "usage_records": records.count(),
        "groups": [
            {
                "status": status,
                "prompt_tokens": prompt,
                "cached_tokens": cached,
                "completion_tokens": completion,
                "charged_nano_usd": charged,
                "records": n,
            }
            for status, prompt, cached, completion, charged, n in groups
        ],
        "ledger_rows": ledger["n"],
        "ledger_amount_nano_usd": ledger["amount"] or 0,
        "input_usd_per_mtok": str(price.input_per_mtok),
        "output_usd_per_mtok": str(price.output_per_mtok),
    }


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "seed":
        result = seed(*args)
    elif command == "stats":
        result = stats()
    elif command == "channel":
        result = add_channel(*args)
    elif command == "model-stats":
        result = model_stats(*args)
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
