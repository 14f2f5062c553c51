"""Logging filters named in settings.LOGGING."""

import logging


class ForbiddenWithoutTraceback(logging.Filter):
    """
    Log a 403 as its one line. Django's `django.request` logger attaches the
    PermissionDenied's traceback to every "Forbidden" warning, though the
    exception is the view's ordinary answer (a member asking for an owner's
    page), not a fault to debug.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
