"""
The portal's pages. URL names are global (no namespace) so Django's auth views
find theirs ("login", "password_reset_done"...). The signed-in app (dashboard,
keys, usage, billing) is routed in portal/app_urls.py under /app/.
"""

from django.urls import include, path

from portal.views import account, members, public

urlpatterns = [
    # Public pages.
    path("", public.home, name="home"),
    path("pricing/", public.pricing, name="pricing"),
    path("docs/", public.docs, name="docs"),
    # Accounts.
    path("signup/", account.signup, name="signup"),
    path("login/", account.LoginView.as_view(), name="login"),
    path("logout/", account.LogoutView.as_view(), name="logout"),
    path(
        "verify-email/resend/",
        account.verify_email_resend,
        name="verify_email_resend",
    ),
    path("verify-email/<str:token>/", account.verify_email, name="verify_email"),
    path("account/", account.account, name="account"),
    path("account/email/", account.email_change, name="email_change"),
    path(
        "account/email/confirm/<str:token>/",
        account.email_change_confirm,
        name="email_change_confirm",
    ),
    path(
        "account/password/",
        account.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password-reset/",
        account.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        account.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        account.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        account.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    # Members of the current tenant.
    path("app/members/", members.member_list, name="members"),
    path("app/members/invite/", members.member_invite, name="member_invite"),
    path("app/members/<int:pk>/role/", members.member_role, name="member_role"),
    path("app/members/<int:pk>/remove/", members.member_remove, name="member_remove"),
    path(
        "app/invitations/<int:pk>/revoke/",
        members.invitation_revoke,
        name="invitation_revoke",
    ),
    path(
        "invitations/<str:token>/",
        members.invitation_accept,
        name="invitation_accept",
    ),
    # The signed-in app, owned by its own URLconf.
    path("app/", include("portal.app_urls")),
]
