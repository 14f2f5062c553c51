"""
Each person's language is remembered on their account (the sign-up page's,
then the switcher's), and the emails sent outside their own requests are
written in it.
"""

import re
import secrets

import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import translation

from accounts.models import User
from onboarding.registration import verification_send
from tests import factories

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.8"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}
PASSWORD = "a long enough passphrase"


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()  # the signup throttle's counters
    yield
    # A page's request leaves its language active for the thread.
    translation.activate(settings.LANGUAGE_CODE)


def ip() -> str:
    return "10." + ".".join(str(secrets.randbelow(250)) for _ in range(3))


def language_of(email: str) -> str:
    return User.objects.get(email=email).language


# --- The switcher -------------------------------------------------------------


def test_the_switcher_keeps_a_signed_in_persons_choice(client, alice):
    client.force_login(alice.user)
    assert language_of("alice@example.com") == ""

    response = client.post(
        reverse("set_language"), {"language": "zh-hans", "next": "/app/"}
    )

    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    assert language_of("alice@example.com") == "zh-hans"
    client.post(reverse("set_language"), {"language": "en", "next": "/app/"})
    assert language_of("alice@example.com") == "en"


def test_the_switcher_keeps_only_a_language_the_site_offers(client, alice):
    client.force_login(alice.user)
    client.post(reverse("set_language"), {"language": "zh-Hans", "next": "/"})
    assert language_of("alice@example.com") == "zh-hans"

    # French: Django has its own messages in it, but the site does not offer it.
    client.post(reverse("set_language"), {"language": "fr", "next": "/"})

    assert language_of("alice@example.com") == "zh-hans"


def test_a_get_of_the_switcher_changes_nothing(client, alice):
    client.force_login(alice.user)

    client.get(reverse("set_language"), {"language": "zh-hans", "next": "/"})

    assert language_of("alice@example.com") == ""


def test_the_switcher_still_works_signed_out(client, db):
    response = client.post(reverse("set_language"), {"language": "zh-hans"})

    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"


# --- Sign-up --------------------------------------------------------------------


def signup(client, email: str, headers: dict, **fields):
    data = {"email": email, "password": PASSWORD, "company": "Lin Labs", **fields}
    return client.post("/signup/", data, REMOTE_ADDR=ip(), **headers)


@pytest.mark.parametrize(
    ("headers", "expected"), [(ZH, "zh-hans"), (EN, "en")], ids=["zh", "en"]
)
def test_sign_up_keeps_the_language_of_the_page(client, db, headers, expected):
    assert signup(client, "lin@example.com", headers).status_code == 302

    assert language_of("lin@example.com") == expected


def test_sign_up_keeps_the_switchers_choice_over_accept_language(client, db):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"

    signup(client, "lin@example.com", EN)

    assert language_of("lin@example.com") == "zh-hans"


def invite(owner_client, email: str, headers: dict) -> str:
    """Invite `email` from a page in the language of `headers`; return the
    token of the emailed link."""
    response = owner_client.post(
        "/app/members/invite/", {"email": email, "role": "member"}, **headers
    )
    assert response.status_code == 302
    link = re.search(r"/invitations/([^/\s]+)/", mail.outbox[-1].body)
    return link[1]


def test_an_invitees_sign_up_keeps_the_language_of_their_page(client, alice):
    owner = Client()
    owner.force_login(alice.user)
    token = invite(owner, "carol@example.com", EN)

    response = client.post(
        "/signup/",
        {"invitation": token, "email": "carol@example.com", "password": PASSWORD},
        REMOTE_ADDR=ip(),
        **ZH,
    )

    assert response.status_code == 302
    assert language_of("carol@example.com") == "zh-hans"


# --- Emails outside the recipient's request -------------------------------------


def test_an_invitation_is_written_in_the_inviters_current_language(client, alice):
    client.force_login(alice.user)

    invite(client, "carol@example.com", ZH)
    invite(client, "dave@example.com", EN)

    chinese, english = mail.outbox
    assert chinese.subject == "邀请您加入 Switchboard 上的 Alice Corp"
    assert "alice@example.com 邀请您以成员身份加入" in chinese.body
    assert english.subject == "You are invited to Alice Corp on Switchboard"
    assert "alice@example.com invited you to join Alice Corp" in english.body


def test_a_verification_sent_by_someone_else_is_in_the_recipients_language(db):
    lin = factories.user("lin@example.com")
    User.objects.filter(pk=lin.pk).update(language="zh-hans")
    lin.refresh_from_db()

    # Staff resending it from an English console page, say.
    with translation.override("en"):
        assert verification_send(user=lin, site_url="http://testserver")

    (message,) = mail.outbox
    assert message.subject == "确认您在 Switchboard 的邮箱地址"
    assert "请打开此链接" in message.body


def test_a_person_with_no_language_gets_the_sites_default(db):
    lin = factories.user("lin@example.com")

    with translation.override("zh-hans"):
        assert verification_send(user=lin, site_url="http://testserver")

    (message,) = mail.outbox
    assert message.subject == "Confirm your email address for Switchboard"
