"""
Plain-text emails from templates, sent after the fact they announce, in the
language of the person who receives them.

An email is often sent outside its recipient's request: from a Celery task
(billing alerts), or from another person's request (an owner inviting a new
member, staff resending a verification). The language active at that moment
is nobody's or someone else's, so the caller names the recipient's language
(accounts.language.of) and the subject and the body are rendered under it.
"""

import logging
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.functional import Promise

logger = logging.getLogger(__name__)


def send_email(
    *,
    to: str | Sequence[str],
    template: str,
    context: dict,
    language: str | None,
    subject: str | Promise | None = None,
    subject_template: str | None = None,
) -> bool:
    """
    Send a plain-text email from `template`, rendered in `language` (None:
    the site's default); return whether it went. The subject is either a
    lazy translation (gettext_lazy, format_lazy), so that it is translated
    here rather than in the caller's language, or a template of its own.
    """
    if (subject is None) == (subject_template is None):
        raise TypeError("give exactly one of subject and subject_template")
    recipients = [to] if isinstance(to, str) else list(to)
    with translation.override(language or settings.LANGUAGE_CODE):
        if subject_template is not None:
            subject = render_to_string(subject_template, context)
        # A subject is one line, whatever the template's line breaks.
        subject = " ".join(str(subject).split())
        body = render_to_string(template, context)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except Exception:  # any transport failure: the caller offers a resend
        logger.exception("could not send %r to %s", subject, recipients)
        return False
    return True
