from django.core.management.base import BaseCommand, CommandError

from billing import journal
from billing.models import Wallet
from billing.money import format_usd_text
from billing.selectors import holds_in_flight, wallet_drifts


class Command(BaseCommand):
    help = (
        "Check that every wallet's balance equals the sum of its ledger, that "
        "its held amount equals its open holds, that each budget's held amount "
        "equals the open holds counted in it, that no hold has expired and "
        "that no dead worker's hold outlived the sweep. Holds of requests in "
        "flight and settlements waiting in the journal are reported, not "
        "counted as drift."
    )

    def handle(self, *args, **options):
        drifts = wallet_drifts()
        for drift in drifts:
            self.stderr.write(f"tenant {drift.tenant_id}: {drift.problem}")
        kept_aside = journal.unsettled()
        if kept_aside:
            self.stderr.write(
                f"journal: {kept_aside} settlements could not be replayed, kept in "
                f"{journal.directory() / journal.UNSETTLED}"
            )
        if drifts or kept_aside:
            raise CommandError(f"{len(drifts) + bool(kept_aside)} problem(s) found")
        self.stdout.write(
            f"OK: {Wallet.objects.count()} wallets balance with their ledgers"
        )
        in_flight = holds_in_flight()
        self.stdout.write(
            f"in flight: {in_flight.holds} holds of {format_usd_text(in_flight.amount)}"
        )
        waiting = journal.depth()
        if waiting:
            self.stdout.write(
                f"journal: {waiting} settlements wait for the database "
                "(manage.py settlements_replay)"
            )
