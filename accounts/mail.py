"""Plain-text emails from templates, sent after the fact they announce."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)


def send_email(*, to: str, subject: str, template: str, context: dict) -> bool:
    """Send a plain-text email from a template; return whether it went."""
    body = render_to_string(template, context)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])
    except Exception:  # any transport failure: the caller offers a resend
        logger.exception("could not send %r to %s", subject, to)
        return False
    return True
