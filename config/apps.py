"""
The project's own app: what every process (web, Celery, manage.py) says at
start about how it is configured.
"""

import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger("switchboard.settings")


class SwitchboardConfig(AppConfig):
    name = "config"
    label = "switchboard"
    verbose_name = "Switchboard"

    def ready(self):
        # Logging is configured by now (settings cannot log: they come first).
        if settings.SWITCHBOARD_EMAILS_TO_LOG and not settings.DEBUG:
            logger.warning(
                "SWITCHBOARD_EMAIL_BACKEND=console: emails are written to this "
                "log instead of being sent, password reset, verification and "
                "invitation links included; set EMAIL_HOST to send them by SMTP"
            )
