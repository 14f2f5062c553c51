"""Every admin page staff use renders, and secrets never show on them."""

import pytest
from django.contrib import admin

from relay.models import Channel


@pytest.fixture
def seeded(alice, channel):
    return channel


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m.__name__)
def test_each_changelist_and_add_page_renders(admin_client, seeded, model):
    meta = model._meta
    changelist = admin_client.get(f"/admin/{meta.app_label}/{meta.model_name}/")
    assert changelist.status_code == 200
    add = admin_client.get(f"/admin/{meta.app_label}/{meta.model_name}/add/")
    # Money, keys and usage rows are never added by hand.
    assert add.status_code in (200, 403)


def test_a_channel_page_shows_its_keys_masked(admin_client, seeded: Channel):
    page = admin_client.get(f"/admin/relay/channel/{seeded.pk}/change/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "sk-upstream-secret-1234" not in text
    assert "sk-…1234" in text


def test_staff_add_a_channel_with_a_key_stored_encrypted(admin_client, fake, prices):
    response = admin_client.post(
        "/admin/relay/channel/add/",
        {
            "name": "new-openai",
            "kind": "openai",
            "base_url": fake.url(),
            "model_names": '["gpt-4.1-mini"]',
            "model_map": "{}",
            "api_version": "",
            "priority": 0,
            "weight": 1,
            "is_enabled": "on",
            "upstream_keys-TOTAL_FORMS": "1",
            "upstream_keys-INITIAL_FORMS": "0",
            "upstream_keys-MIN_NUM_FORMS": "0",
            "upstream_keys-MAX_NUM_FORMS": "1000",
            "upstream_keys-0-label": "primary",
            "upstream_keys-0-new_secret": "sk-typed-by-staff",
            "upstream_keys-0-is_enabled": "on",
            "costs-TOTAL_FORMS": "0",
            "costs-INITIAL_FORMS": "0",
            "costs-MIN_NUM_FORMS": "0",
            "costs-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = Channel.objects.get(name="new-openai")
    key = channel.upstream_keys.get()
    assert key.secret == "sk-typed-by-staff"
    assert "sk-typed-by-staff" not in key.secret_encrypted
