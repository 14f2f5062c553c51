"""
Each person's language, remembered on their account for the emails they
receive outside their own requests (accounts.mail).

Pages follow the switcher's cookie or Accept-Language (LocaleMiddleware);
an email sent from a Celery task or from someone else's request has no such
request to follow. So the account keeps the language of the sign-up page,
then each choice made with the switcher: one place, the `set_language` view
below, which wraps Django's.
"""

from django.conf import settings
from django.utils import translation
from django.views.i18n import set_language as django_set_language

from accounts.models import User


def supported(code: str | None) -> str | None:
    """`code` as it is spelled in settings.LANGUAGES ("zh-Hans", "zh-CN" and
    "zh" give "zh-hans"; "en-US" gives "en"), or None if not offered."""
    if not code:
        return None
    try:
        variant = translation.get_supported_language_variant(code)
    except LookupError:
        return None
    offered = {language.lower(): language for language, _name in settings.LANGUAGES}
    return offered.get(variant.lower())


def of(user: User | None) -> str:
    """The language of `user`'s emails: their own, else the site's default."""
    return (user and supported(user.language)) or settings.LANGUAGE_CODE


def remember(user: User, code: str | None) -> bool:
    """Keep `code` as `user`'s language; return False if it is not one the
    site offers or is theirs already."""
    language = supported(code)
    if language is None:
        return False
    changed = (
        User.objects.filter(pk=user.pk)
        .exclude(language=language)
        .update(language=language)
    )
    user.language = language
    return bool(changed)


def set_language(request):
    """Django's set_language (the choice in a cookie, for the pages), and for
    a signed-in person the choice on their account too, for their emails."""
    response = django_set_language(request)
    if request.method == "POST" and request.user.is_authenticated:
        remember(request.user, request.POST.get("language"))
    return response
