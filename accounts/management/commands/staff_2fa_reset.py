"""
Reset a staff member's second factor (a lost phone, or lost recovery codes):
their authenticator and recovery codes are removed and their sessions end,
so their next login enrols a new authenticator.

    manage.py staff_2fa_reset ops@example.com
"""

from django.core.management.base import BaseCommand, CommandError

from accounts import twofactor
from accounts.models import User


class Command(BaseCommand):
    help = "Remove a user's second-factor devices; their next login enrols anew."

    def add_arguments(self, parser):
        parser.add_argument("email", help="the staff member's email address")

    def handle(self, *args, email: str, **options):
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"No user has the address {email}.")
        removed = twofactor.devices_reset(user=user)
        self.stdout.write(
            f"Removed {removed} second-factor device(s) of {user.email} and "
            "ended their sessions. They enrol a new authenticator at their "
            "next login."
        )
