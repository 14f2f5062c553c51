"""Management token authentication: `Authorization: Bearer sb-mgmt-...`."""

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.keys import KEY_PREFIX
from accounts.models import Membership
from api import tokens
from api.models import ManagementToken

# last_used_at is written at most this often per token: an exact time is not
# worth a write on every request.
TOUCH_EVERY = timedelta(minutes=1)


class ManagementTokenAuthentication(authentication.BaseAuthentication):
    """
    Authenticate a request by a management token. The request acts as the
    token's user, for the token's tenant, with the role the user has in it
    now: a token of someone removed from the tenant stops working at once.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        scheme, _, credential = (
            authentication.get_authorization_header(request)
            .decode("latin-1")
            .partition(" ")
        )
        if scheme.lower() != self.keyword.lower():
            return None
        credential = credential.strip()
        if not credential.startswith(tokens.TOKEN_PREFIX):
            if credential.startswith(KEY_PREFIX):
                message = (
                    "This is an API key for /v1. The management API takes a "
                    f"management token ({tokens.TOKEN_PREFIX}...)."
                )
            else:
                message = (
                    f'Not a management token: they start with "{tokens.TOKEN_PREFIX}".'
                )
            raise exceptions.AuthenticationFailed(message, code="wrong_token_type")
        return self._check(credential)

    def _check(self, secret: str):
        token = (
            ManagementToken.objects.select_related("user", "tenant")
            .filter(digest=tokens.digest(secret))
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed(
                "Unknown management token.", code="invalid_token"
            )
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                "This management token was revoked.", code="token_revoked"
            )
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(
                "The account of this token's owner is disabled.",
                code="user_inactive",
            )
        membership = Membership.objects.filter(
            user_id=token.user_id, tenant_id=token.tenant_id
        ).first()
        if membership is None:
            raise exceptions.AuthenticationFailed(
                "This token's owner is no longer a member of its tenant.",
                code="not_a_member",
            )
        # Already loaded with the token: no second fetch of either.
        membership.user = token.user
        membership.tenant = token.tenant
        token.membership = membership
        self._touch(token)
        return token.user, token

    def _touch(self, token: ManagementToken) -> None:
        now = timezone.now()
        if token.last_used_at is None or token.last_used_at < now - TOUCH_EVERY:
            ManagementToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now

    def authenticate_header(self, request) -> str:
        # Answers without credentials are 401 (with this challenge), not 403.
        return f'{self.keyword} realm="api"'
