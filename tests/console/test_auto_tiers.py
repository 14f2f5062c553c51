"""The `auto` model's tiers (relay.auto): read by staff, set by finance, audited."""

import json

from django.urls import reverse

from audit.models import AuditEvent
from relay import catalog
from relay.models import AutoTiers, Channel
from tests import factories

URL = reverse("console:auto_tiers")
NANO, MINI, FULL = "gpt-4.1-nano", "gpt-4.1-mini", "gpt-4.1"


def save(client, tiers: str, reason: str = "cheaper coding"):
    return client.post(URL, {"tiers": tiers, "reason": reason})


def test_support_reads_the_default_tiers_and_gets_no_form(support_client, prices):
    factories.channel("openai", "http://upstream.invalid/v1", [NANO, MINI])

    page = support_client.get(URL)

    assert page.status_code == 200
    assert [row.model for row in page.context["rows"]] == [NANO, MINI, FULL]
    assert [row.usable for row in page.context["rows"]] == [True, True, False]
    assert page.context["default"] is True
    assert page.context["form"] is None
    text = page.content.decode()
    assert 'aria-current="page"' in text and f'href="{URL}"' in text
    assert "no enabled channel: skipped" in text


def test_support_cannot_change_them(support_client, prices):
    response = save(support_client, MINI)

    assert response.status_code == 403
    assert not AutoTiers.objects.exists()
    assert not AuditEvent.objects.exists()


def test_finance_sets_them_with_a_reason_and_the_relay_reads_them(
    finance_client, finance, prices
):
    response = save(finance_client, f"{MINI}\n  {FULL}  \n\n")

    assert response.status_code == 302
    assert AutoTiers.current() == (MINI, FULL)
    assert catalog._load().auto_tiers == (MINI, FULL)
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.reason) == (
        "auto_tiers.change",
        finance,
        "cheaper coding",
    )
    assert event.data == {"before": [NANO, MINI, FULL], "after": [MINI, FULL]}
    page = finance_client.get(URL)
    assert page.context["default"] is False
    assert page.context["form"].initial["tiers"] == f"{MINI}\n{FULL}"


def test_saving_the_same_tiers_changes_nothing(finance_client, prices):
    save(finance_client, f"{NANO}\n{MINI}\n{FULL}")

    assert not AutoTiers.objects.exists()
    assert not AuditEvent.objects.exists()


def test_an_empty_list_turns_auto_off(finance_client, prices):
    save(finance_client, "")

    assert AutoTiers.current() == ()
    page = finance_client.get(URL)
    assert "the auto model is off" in page.content.decode()


def test_bad_tiers_are_refused_naming_each_problem(finance_client, prices):
    factories.gpt_image_price()

    response = save(finance_client, f"{NANO}\ngpt-9\n{NANO}\ngpt-image-1")

    assert response.status_code == 400
    errors = response.context["form"].errors["tiers"]
    assert f"Listed twice: {NANO}." in errors
    assert "Not in the catalog: gpt-9." in errors
    assert "Not text generation models: gpt-image-1." in errors
    assert not AutoTiers.objects.exists()


def test_a_reason_is_required(finance_client, prices):
    response = save(finance_client, MINI, reason=" ")

    assert response.status_code == 400
    assert not AutoTiers.objects.exists()


def test_the_admin_edits_them_audited_and_validated(admin_client, prices):
    add = reverse("admin:relay_autotiers_add")

    refused = admin_client.post(add, {"tiers": json.dumps(["gpt-9"])})
    assert refused.status_code == 200  # the form again, with its error
    assert not AutoTiers.objects.exists()

    done = admin_client.post(add, {"tiers": json.dumps([MINI, FULL])})

    assert done.status_code == 302
    assert AutoTiers.current() == (MINI, FULL)
    assert AuditEvent.objects.get().action == "auto_tiers.change"
    # One list only: adding another replaces it.
    admin_client.post(add, {"tiers": json.dumps([NANO])})
    assert AutoTiers.objects.get().tiers == [NANO]


def test_an_enabled_channel_makes_a_tier_usable(support_client, prices):
    made = factories.channel("openai", "http://upstream.invalid/v1", [FULL])
    Channel.objects.filter(pk=made.pk).update(is_enabled=False)

    page = support_client.get(URL)

    assert [row.usable for row in page.context["rows"]] == [False, False, False]
