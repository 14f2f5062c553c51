from django.core.management.base import BaseCommand

from billing import journal


class Command(BaseCommand):
    help = (
        "Settle the settlements journaled while the database was unreachable "
        "(every live server does it on its own within seconds; this is for "
        "a host whose servers are gone). Safe to run at any time: each entry "
        "is settled once, however often it is replayed."
    )

    def handle(self, *args, **options):
        waiting = journal.depth()
        settled = journal.replay()
        left = journal.depth()
        self.stdout.write(
            f"{settled} of {waiting} journaled settlements settled; {left} waiting"
        )
