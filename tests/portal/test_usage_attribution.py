"""The portal's usage log by end user and tag, on the page and in the CSV."""

import csv
import io

import pytest
from django.urls import reverse

from relay.models import UsageRecord
from tests import factories


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice.user)
    return client


@pytest.fixture
def attributed(alice):
    return [
        factories.usage_record(alice, end_user="ann", tags={"team": "search"}),
        factories.usage_record(alice, end_user="=ben", tags={"team": "ads"}),
        factories.usage_record(alice),
    ]


def listed(response) -> list[str]:
    assert response.status_code == 200
    return [record.request_id for record in response.context["page"]]


def test_the_log_filters_by_end_user_and_tag(signed_in, attributed):
    ann, ben, _ = attributed
    assert listed(signed_in.get(reverse("usage"), {"end_user": "ann"})) == [
        ann.request_id
    ]
    assert listed(signed_in.get(reverse("usage"), {"tag": "team=ads"})) == [
        ben.request_id
    ]
    assert set(listed(signed_in.get(reverse("usage"), {"tag": "team"}))) == {
        ann.request_id,
        ben.request_id,
    }
    page = signed_in.get(reverse("usage"), {"end_user": "ann"}).content.decode()
    assert 'name="end_user"' in page and 'name="tag"' in page


def test_a_bad_tag_is_marked_on_the_form(signed_in, attributed):
    response = signed_in.get(reverse("usage"), {"tag": "x" * 600})
    assert response.status_code == 200
    assert response.context["errors"] == {"tag": "A tag has at most 577 characters."}


def test_the_csv_export_holds_the_end_user_and_tags(signed_in, attributed):
    response = signed_in.get(reverse("usage_csv"), {"tag": "team"})
    body = b"".join(response.streaming_content).decode()
    rows = {row["end_user"]: row["tags"] for row in csv.DictReader(io.StringIO(body))}
    # The customer's text cannot run as a formula.
    assert rows == {"ann": '{"team":"search"}', "'=ben": '{"team":"ads"}'}


def test_the_detail_page_links_the_end_user_and_each_tag(signed_in, attributed):
    ann = attributed[0]
    page = signed_in.get(reverse("usage_detail", args=[ann.request_id]))
    html = page.content.decode()
    assert f"{reverse('usage')}?end_user=ann" in html
    assert f"{reverse('usage')}?tag=team%3Dsearch" in html
    assert UsageRecord.objects.get(pk=ann.pk).tags == {"team": "search"}
