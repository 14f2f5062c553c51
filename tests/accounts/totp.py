"""
Codes an authenticator app would show for a TOTP device, computed in the
test from the device's key (RFC 6238, via django_otp.oath.totp), as a phone
computes them from the QR code.

A device accepts each time step once (django-otp keeps the last one used),
so a second login within 30 seconds uses the next step's code, which the
device's one-step tolerance accepts.
"""

import time
from base64 import b32decode

from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


def code_for_key(key: bytes, *, steps_ahead: int = 0) -> str:
    return f"{totp(key, step=30, t0=0, digits=6, drift=steps_ahead):06d}"


def code_for_secret(secret: str, *, steps_ahead: int = 0) -> str:
    """The code for a base32 secret as shown on the enrolment page."""
    clean = "".join(secret.split()).upper()
    key = b32decode(clean + "=" * (-len(clean) % 8))
    return code_for_key(key, steps_ahead=steps_ahead)


def current_code(device: TOTPDevice) -> str:
    """The first code `device` accepts now."""
    device.refresh_from_db()
    now_step = int(time.time() - device.t0) // device.step
    # last_t is -1 for a device never used; a used step is not accepted again.
    ahead = max(0, device.last_t + 1 - (now_step + device.drift))
    return code_for_key(device.bin_key, steps_ahead=device.drift + ahead)
