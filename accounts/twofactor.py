"""
The staff's second factor: a TOTP authenticator app, with one-time recovery
codes for when the phone is lost (django-otp's TOTP and static devices).

With SWITCHBOARD_STAFF_2FA on, every staff account (is_staff or
is_superuser) must give a code in each session before /admin/ and /console/
open (console/middleware.py). A staff account without an authenticator is
sent to enrol at its first login: it scans a QR code (or types the secret),
confirms with a code, and is shown its recovery codes once. Customers are
never asked.

A session is "verified" once django_otp.login() has stored the device that
accepted a code in it (is_verified). Lost phone: `manage.py staff_2fa_reset
EMAIL` (devices_reset) removes the devices and ends the user's sessions;
deleting the devices in the admin leaves sessions already verified open.
"""

from base64 import b32encode
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp import DEVICE_ID_SESSION_KEY, devices_for_user
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.roles import is_staff

RECOVERY_CODES = 10
AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"


def required(user) -> bool:
    """Whether `user` must give a second factor before the staff areas."""
    return bool(settings.SWITCHBOARD_STAFF_2FA) and is_staff(user)


def is_verified(request) -> bool:
    """
    Whether this session's user gave a second factor in this session.

    Read from the session alone, with no query (django-otp's OTPMiddleware
    would load the device on every request, over the staff pages' query
    budgets). The device id in a session is always its own user's:
    django_otp.login() checks that, and Django's login() flushes a session
    that changes user and logout() empties it. Resetting a user's devices
    (devices_reset) also ends their sessions.
    """
    return bool(
        request.user.is_authenticated
        and hasattr(request, "session")
        and request.session.get(DEVICE_ID_SESSION_KEY)
    )


def needs_verification(request) -> bool:
    """Whether this request must give a second factor before a staff area."""
    return required(request.user) and not is_verified(request)


def is_enrolled(user) -> bool:
    """Whether `user` has a confirmed authenticator."""
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).exists()


def enrolment_device(user) -> TOTPDevice:
    """
    Return the authenticator `user` is enrolling: the unconfirmed one made
    earlier (so the secret stays the same when the page is reloaded), or a
    new one with a fresh random key.
    """
    device = (
        TOTPDevice.objects.devices_for_user(user, confirmed=False)
        .order_by("pk")
        .first()
    )
    if device is None:
        device = TOTPDevice.objects.create(
            user=user, name=AUTHENTICATOR_NAME, confirmed=False
        )
    return device


def secret_text(device: TOTPDevice) -> str:
    """The device's key in base32, in groups of four, for typing by hand."""
    secret = b32_secret(device)
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def b32_secret(device: TOTPDevice) -> str:
    return b32encode(device.bin_key).decode().rstrip("=")


def qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URL as an inline <svg> (no script, no style
    attribute: allowed by a strict CSP)."""
    # Imported here: only enrolment draws a QR code, and every process
    # would otherwise carry segno (the relay's included).
    import segno

    return segno.make(device.config_url, error="m").svg_inline(
        scale=4,
        dark="#000",
        light="#fff",
        title=_("QR code for your authenticator app"),
        svgclass="twofactor-qr",
    )


@transaction.atomic
def enrolment_confirm(*, user, device: TOTPDevice, code: str) -> list[str] | None:
    """
    Confirm `user`'s new authenticator with a code it shows. On success,
    replace any other device of theirs and return new recovery codes (to be
    shown once); on a wrong code, return None.
    """
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
    if device.confirmed or not device.verify_token(_digits(code)):
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    return recovery_codes_create(user=user)


@transaction.atomic
def recovery_codes_create(*, user) -> list[str]:
    """Replace `user`'s recovery codes with new ones; return them."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(
        StaticToken(device=device, token=code) for code in codes
    )
    return codes


def verify(*, user, code: str) -> Device | None:
    """
    Return the device of `user` that accepts `code` (a 6-digit authenticator
    code, or a recovery code, used up by this), or None.
    """
    digits = _digits(code)
    recovery = "".join(str(code).split()).lower()[:16]
    # A 6-digit code is for the authenticator, anything else a recovery code
    # (8 letters and digits): trying a code on the wrong kind of device would
    # only slow that device down (django-otp backs off after each failure).
    looks_totp = digits.isdigit() and len(digits) == 6
    with transaction.atomic():
        for device in devices_for_user(user, confirmed=True, for_verify=True):
            if isinstance(device, TOTPDevice):
                accepted = looks_totp and device.verify_token(digits)
            elif isinstance(device, StaticDevice):
                accepted = bool(recovery) and not looks_totp
                accepted = accepted and device.verify_token(recovery)
            else:
                accepted = False
            if accepted:
                return device
    return None


def session_verify(request, device: Device) -> None:
    """Mark this session as having given `device`'s second factor, under a
    new session key (as Django's login() does for the password)."""
    request.session.cycle_key()
    otp_login(request, device)


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user).count()


@transaction.atomic
def devices_reset(*, user) -> int:
    """
    Remove every second-factor device of `user` (a lost phone) and end
    their sessions: their next staff login enrols a new authenticator.
    Return how many devices were removed.
    """
    removed = 0
    for device in devices_for_user(user, confirmed=None):
        device.delete()
        removed += 1
    _sessions_end(user)
    return removed


def _sessions_end(user) -> None:
    """Delete `user`'s sessions in the database session store."""
    if settings.SESSION_ENGINE not in (
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
    ):
        return
    from django.contrib.sessions.models import Session

    engine = import_module(settings.SESSION_ENGINE)
    live = Session.objects.filter(expire_date__gt=timezone.now())
    for session in live.iterator():
        data = session.get_decoded()
        if data.get(SESSION_KEY) == str(user.pk):
            engine.SessionStore(session_key=session.session_key).delete()


def _digits(code) -> str:
    return "".join(str(code).split())[:16]
