"""The management API answers in English whatever language the request asks
for: programs parse its messages (as on /v1)."""

import pytest
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.8"}


@pytest.fixture(autouse=True)
def _english_after():
    # A page's request leaves its language active for the thread.
    yield
    translation.activate(settings.LANGUAGE_CODE)


def chinese(message: str) -> str:
    with translation.override("zh-hans"):
        return gettext(message)


def test_a_401_is_in_english_whatever_accept_language_says(api_client):
    english = "Authentication credentials were not provided."
    # DRF ships this message in Chinese: a page would show that.
    assert chinese(english) != english

    response = api_client.get("/api/balance/", **ZH)

    assert response.status_code == 401
    assert response.json() == {"detail": english, "code": "not_authenticated"}
    assert "Content-Language" not in response
    assert "Accept-Language" not in response.get("Vary", "")


def test_a_400_is_in_english_whatever_accept_language_says(alice_api):
    english = "This field may not be blank."
    assert chinese(english) != english

    response = alice_api.client.post("/api/keys/", {"name": ""}, format="json", **ZH)

    assert response.status_code == 400
    body = response.json()
    assert body["errors"]["name"] == [english]
    assert body["detail"] == f"name: {english}"


def test_a_401_is_in_english_whatever_the_language_cookie_says(api_client):
    english = "Authentication credentials were not provided."
    api_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"

    response = api_client.get("/api/keys/")

    assert response.status_code == 401
    assert response.json()["detail"] == english


def test_the_pages_still_follow_accept_language(client, db):
    response = client.get("/pricing/", **ZH)

    assert response["Content-Language"] == "zh-hans"
