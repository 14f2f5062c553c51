from django.core.management.base import BaseCommand, CommandError

from billing.models import Wallet
from billing.selectors import wallet_drifts


class Command(BaseCommand):
    help = (
        "Check that every wallet's balance equals the sum of its ledger, that "
        "its held amount equals its open holds, and that no hold has expired."
    )

    def handle(self, *args, **options):
        drifts = wallet_drifts()
        for drift in drifts:
            self.stderr.write(f"tenant {drift.tenant_id}: {drift.problem}")
        if drifts:
            raise CommandError(f"{len(drifts)} problem(s) found")
        self.stdout.write(
            f"OK: {Wallet.objects.count()} wallets balance with their ledgers"
        )
