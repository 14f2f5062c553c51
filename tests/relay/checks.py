"""What several relay test files check a request left behind."""

from django.core.management import call_command

from billing.models import Hold, LedgerEntry
from relay.models import UsageRecord


def assert_refused_uncharged(response, status, param, customer, balance) -> None:
    """
    Check `response` is an OpenAI error of `status` naming `param`, and that
    `customer` still has `balance` with nothing held or charged.
    """
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert not Hold.objects.exists()
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).exists()
    wallet = customer.wallet
    assert (wallet.balance, wallet.held) == (balance, 0)
    call_command("billing_audit")


def assert_refused_before_the_upstream(response, param, customer, balance, fake):
    """
    Check `response` is a 400 naming `param` that never reached the upstream
    `fake` (a FakeUpstream), recorded no usage and left `balance` untouched.
    """
    assert_refused_uncharged(response, 400, param, customer, balance)
    assert fake.request_counts.total() == 0
    assert not UsageRecord.objects.exists()
