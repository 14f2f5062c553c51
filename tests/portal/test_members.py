"""
A tenant's members: invitations, roles, removal; members read, owners
manage; nobody reaches another tenant's members, by id guessing either.
"""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache

from accounts.models import Invitation, Membership, User
from audit.models import AuditEvent
from tests import factories


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()


def invite(client, email, role="member"):
    return client.post("/app/members/invite/", {"email": email, "role": role})


def invitation_path() -> str:
    message = mail.outbox[-1]
    return re.search(r"https?://[^/\s]+(/invitations/[^/\s]+/)", message.body)[1]


@pytest.fixture
def owner_client(client, alice):
    client.force_login(alice.user)
    return client


@pytest.fixture
def carol(db):
    return factories.user("carol@example.com")


def member_of(customer, user, role=Membership.Role.MEMBER) -> Membership:
    return factories.membership(customer.tenant, user, role)


def test_members_page_needs_a_login(client, db):
    assert client.get("/app/members/")["Location"].startswith("/login/")


def test_owner_sees_members_and_the_invite_form(owner_client, alice, carol):
    member_of(alice, carol)
    html = owner_client.get("/app/members/").content.decode()
    assert 'data-email="alice@example.com"' in html
    assert 'data-email="carol@example.com"' in html
    assert 'action="/app/members/invite/"' in html


def test_owner_invites_by_email(owner_client, alice):
    response = invite(owner_client, "Carol@Example.com")
    assert response["Location"] == "/app/members/"
    invitation = Invitation.objects.get()
    assert (invitation.tenant, invitation.email) == (alice.tenant, "carol@example.com")
    assert invitation.invited_by == alice.user
    assert mail.outbox[-1].to == ["carol@example.com"]
    assert "Alice Corp" in mail.outbox[-1].subject
    # Only a digest of the link's secret is stored.
    secret = invitation_path().split("/")[2]
    assert secret not in invitation.token_digest
    assert AuditEvent.objects.filter(action="member.invite").exists()
    assert "carol@example.com" in owner_client.get("/app/members/").content.decode()


def test_inviting_again_replaces_the_pending_invitation(owner_client, alice):
    invite(owner_client, "carol@example.com")
    first = invitation_path()
    invite(owner_client, "carol@example.com", role="owner")
    assert Invitation.objects.get().role == "owner"
    assert owner_client.get(first).status_code == 400


def test_inviting_a_member_again_is_refused(owner_client, alice, carol):
    member_of(alice, carol)
    response = invite(owner_client, "carol@example.com")
    assert response.status_code == 400
    assert "carol@example.com is already a member of Alice Corp." in (
        response.content.decode()
    )
    assert not Invitation.objects.exists()


def test_a_bad_address_is_refused_next_to_the_field(owner_client, alice):
    response = invite(owner_client, "not-an-address")
    assert response.status_code == 400
    assert 'id="id_email_error"' in response.content.decode()


def test_invitee_signs_up_from_the_link_and_joins(client, owner_client, alice):
    invite(owner_client, "carol@example.com")
    path = invitation_path()
    owner_client.logout()
    page = client.get(path).content.decode()
    assert "Join Alice Corp" in page
    token = path.split("/")[2]
    signup_page = client.get(f"/signup/?invitation={token}").content.decode()
    assert 'value="carol@example.com"' in signup_page
    assert 'name="company"' not in signup_page  # joins; owns no tenant
    response = client.post(
        "/signup/",
        {
            "invitation": token,
            "email": "carol@example.com",
            "password": "a long enough passphrase",
        },
        REMOTE_ADDR="10.9.9.9",
    )
    assert response.status_code == 302
    carol = User.objects.get(email="carol@example.com")
    membership = Membership.objects.get(user=carol)
    assert (membership.tenant, membership.role) == (alice.tenant, "member")
    assert carol.email_verified_at is not None  # the link proved the mailbox
    assert Invitation.objects.get().accepted_at is not None
    assert client.get(path).status_code == 400  # used


def test_invitation_signup_must_use_the_invited_address(client, owner_client, alice):
    invite(owner_client, "carol@example.com")
    token = invitation_path().split("/")[2]
    owner_client.logout()
    response = client.post(
        "/signup/",
        {
            "invitation": token,
            "email": "mallory@example.com",
            "password": "a long enough passphrase",
        },
        REMOTE_ADDR="10.9.9.8",
    )
    assert response.status_code == 200
    assert "This invitation is for carol@example.com" in response.content.decode()
    assert not User.objects.filter(email="mallory@example.com").exists()


def test_an_existing_user_accepts_after_logging_in(client, alice, bob):
    client.force_login(alice.user)
    invite(client, "bob@example.com", role="owner")
    path = invitation_path()
    client.force_login(bob.user)
    assert "Join Alice Corp" in client.get(path).content.decode()
    response = client.post(path)
    assert response["Location"] == "/app/members/"
    membership = Membership.objects.get(user=bob.user, tenant=alice.tenant)
    assert membership.role == "owner"
    # The session now acts for the tenant just joined.
    assert client.session["tenant_id"] == alice.tenant.pk


def test_another_user_cannot_accept_someone_elses_invitation(client, alice, bob):
    client.force_login(alice.user)
    invite(client, "carol@example.com")
    path = invitation_path()
    client.force_login(bob.user)
    html = client.get(path).content.decode()
    assert "You are signed in as bob@example.com" in html
    html = client.post(path, follow=True).content.decode()
    assert "This invitation is for carol@example.com" in html
    assert not Membership.objects.filter(user=bob.user, tenant=alice.tenant).exists()


def test_an_expired_invitation_is_refused(client, owner_client, alice, carol):
    invite(owner_client, "carol@example.com")
    path = invitation_path()
    Invitation.objects.update(
        created_at=Invitation.objects.get().created_at - timedelta(days=8)
    )
    client.force_login(carol)
    assert client.get(path).status_code == 400
    assert client.post(path).status_code == 400
    assert not Membership.objects.filter(user=carol).exists()


def test_an_unknown_invitation_link_is_refused(client, db):
    response = client.get("/invitations/not-a-real-token/")
    assert response.status_code == 400
    assert "Invitation not valid" in response.content.decode()


def test_owner_withdraws_an_invitation(owner_client, alice):
    invite(owner_client, "carol@example.com")
    path = invitation_path()
    invitation = Invitation.objects.get()
    response = owner_client.post(f"/app/invitations/{invitation.pk}/revoke/")
    assert response["Location"] == "/app/members/"
    assert not Invitation.objects.exists()
    assert owner_client.get(path).status_code == 400


def test_owner_changes_roles(owner_client, alice, carol):
    membership = member_of(alice, carol)
    owner_client.post(f"/app/members/{membership.pk}/role/", {"role": "owner"})
    membership.refresh_from_db()
    assert membership.role == "owner"
    assert AuditEvent.objects.filter(action="member.role").exists()


def test_the_last_owner_cannot_be_demoted_or_removed(owner_client, alice):
    own = Membership.objects.get(user=alice.user, tenant=alice.tenant)
    html = owner_client.post(
        f"/app/members/{own.pk}/role/", {"role": "member"}, follow=True
    ).content.decode()
    assert "A tenant needs at least one owner" in html
    html = owner_client.post(
        f"/app/members/{own.pk}/remove/", follow=True
    ).content.decode()
    assert "the last owner cannot be removed" in html
    own.refresh_from_db()
    assert own.role == "owner"


def test_an_owner_can_step_down_when_another_owner_remains(owner_client, alice, carol):
    member_of(alice, carol, role=Membership.Role.OWNER)
    own = Membership.objects.get(user=alice.user, tenant=alice.tenant)
    owner_client.post(f"/app/members/{own.pk}/role/", {"role": "member"})
    own.refresh_from_db()
    assert own.role == "member"


def test_owner_removes_a_member(owner_client, alice, carol):
    membership = member_of(alice, carol)
    response = owner_client.post(f"/app/members/{membership.pk}/remove/")
    assert response["Location"] == "/app/members/"
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert User.objects.filter(pk=carol.pk).exists()  # the person stays


@pytest.fixture
def member_client(client, alice, carol):
    member_of(alice, carol)
    client.force_login(carol)
    return client


def test_a_member_sees_the_list_read_only(member_client, alice):
    html = member_client.get("/app/members/").content.decode()
    assert 'data-email="alice@example.com"' in html
    assert "Only owners can invite or remove members." in html
    assert "/app/members/invite/" not in html
    assert "/remove/" not in html


def test_a_member_gets_403_on_every_owner_action(member_client, alice):
    own = Membership.objects.get(user=alice.user)
    invitation = Invitation.objects.create(
        tenant=alice.tenant, email="dave@example.com", token_digest="x" * 64
    )
    for path, data in [
        ("/app/members/invite/", {"email": "dave@example.com", "role": "owner"}),
        (f"/app/members/{own.pk}/role/", {"role": "member"}),
        (f"/app/members/{own.pk}/remove/", {}),
        (f"/app/invitations/{invitation.pk}/revoke/", {}),
    ]:
        assert member_client.post(path, data).status_code == 403, path
    own.refresh_from_db()
    assert own.role == "owner"
    assert Invitation.objects.filter(pk=invitation.pk).exists()
    assert Invitation.objects.count() == 1


def test_owner_actions_are_posts(owner_client, alice):
    own = Membership.objects.get(user=alice.user)
    assert owner_client.get(f"/app/members/{own.pk}/remove/").status_code == 405


def test_another_tenants_members_are_404(owner_client, alice, bob, carol):
    """Charlie should have no access to Alice's stuff: here Alice is the
    owner guessing ids of Bob's tenant."""
    bobs_member = member_of(bob, carol)
    bobs_own = Membership.objects.get(user=bob.user)
    invitation = Invitation.objects.create(
        tenant=bob.tenant, email="dave@example.com", token_digest="y" * 64
    )
    for path, data in [
        (f"/app/members/{bobs_member.pk}/role/", {"role": "owner"}),
        (f"/app/members/{bobs_member.pk}/remove/", {}),
        (f"/app/members/{bobs_own.pk}/remove/", {}),
        (f"/app/invitations/{invitation.pk}/revoke/", {}),
    ]:
        assert owner_client.post(path, data).status_code == 404, path
    assert Membership.objects.filter(tenant=bob.tenant).count() == 2
    assert Invitation.objects.filter(pk=invitation.pk).exists()
    html = owner_client.get("/app/members/").content.decode()
    assert "bob@example.com" not in html
    assert "carol@example.com" not in html


def test_an_owner_of_two_tenants_manages_the_one_the_session_acts_for(
    client, alice, bob, carol
):
    member_of(bob, alice.user, role=Membership.Role.OWNER)
    bobs_member = member_of(bob, carol)
    client.force_login(alice.user)
    # Acting for Alice Corp (the default): Bob Corp's membership is not found.
    assert client.post(f"/app/members/{bobs_member.pk}/remove/").status_code == 404
    client.post("/account/", {"tenant": bob.tenant.pk})
    assert client.post(f"/app/members/{bobs_member.pk}/remove/").status_code == 302
    assert not Membership.objects.filter(pk=bobs_member.pk).exists()


def test_switching_to_a_tenant_one_is_not_in_is_refused(client, alice, bob):
    client.force_login(alice.user)
    client.post("/account/", {"tenant": bob.tenant.pk})
    assert client.session.get("tenant_id") != bob.tenant.pk


def test_members_page_queries_do_not_grow_with_members(
    owner_client, alice, django_assert_max_num_queries
):
    for n in range(3):
        factories.customer(f"extra{n}", usd="")
    for user in User.objects.exclude(pk=alice.user.pk):
        member_of(alice, user)
    for n in range(5):
        Invitation.objects.create(
            tenant=alice.tenant,
            email=f"pending{n}@example.com",
            token_digest=f"{n}" * 64,
            invited_by=alice.user,
        )
    with django_assert_max_num_queries(8):
        html = owner_client.get("/app/members/").content.decode()
    assert html.count("data-email=") == 4
