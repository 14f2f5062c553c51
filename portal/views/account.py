"""Account pages: signup, email verification, login, logout, password reset
and email change. (Being written: placeholders so the layout renders.)"""

from django.contrib.auth import views as auth_views
from django.http import HttpResponse


def _todo(request, *args, **kwargs):
    return HttpResponse("Coming soon", status=501)


signup = verify_email = verify_email_resend = account = email_change = _todo
email_change_confirm = _todo
LoginView = auth_views.LoginView
LogoutView = auth_views.LogoutView
PasswordChangeView = auth_views.PasswordChangeView
PasswordResetView = auth_views.PasswordResetView
PasswordResetDoneView = auth_views.PasswordResetDoneView
PasswordResetConfirmView = auth_views.PasswordResetConfirmView
PasswordResetCompleteView = auth_views.PasswordResetCompleteView
