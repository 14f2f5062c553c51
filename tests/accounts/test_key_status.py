"""A key's status, as the API, the portal and the relay state it."""

from datetime import UTC, datetime, timedelta

from accounts.models import ApiKey

NOW = datetime(2025, 3, 10, 12, tzinfo=UTC)


def test_a_key_without_expiry_stays_active():
    assert ApiKey.status_of(revoked=False, expires_at=None, now=NOW) == "active"


def test_a_key_expires_at_its_expiry_instant():
    second = timedelta(seconds=1)

    def status(expires_at):
        return ApiKey.status_of(revoked=False, expires_at=expires_at, now=NOW)

    assert status(NOW + second) == ApiKey.Status.ACTIVE
    assert status(NOW) == ApiKey.Status.EXPIRED
    assert status(NOW - second) == ApiKey.Status.EXPIRED


def test_revoked_wins_over_expired():
    assert ApiKey.status_of(revoked=True, expires_at=NOW, now=NOW) == "revoked"


def test_the_property_reads_the_keys_own_fields():
    key = ApiKey(revoked_at=None, expires_at=None)
    assert key.status == "active"
    key.expires_at = datetime(2000, 1, 1, tzinfo=UTC)
    assert key.status == "expired"
    key.revoked_at = datetime(2000, 1, 2, tzinfo=UTC)
    assert key.status == "revoked"
