"""Forms of the public, account and members pages."""

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Membership, Tenant, User

# Enough for any real daily volume, small enough that every product fits
# comfortably in a 64-bit nano-USD amount.
MAX_TOKENS_PER_DAY = 10**12


class CostCalculatorForm(forms.Form):
    input_tokens = forms.IntegerField(
        label=_("Input tokens per day"),
        min_value=0,
        max_value=MAX_TOKENS_PER_DAY,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "step": 1}),
    )
    output_tokens = forms.IntegerField(
        label=_("Output tokens per day"),
        min_value=0,
        max_value=MAX_TOKENS_PER_DAY,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "step": 1}),
    )


def normalise_email(email: str) -> str:
    """Addresses are stored lower-case (accounts.models.UserManager)."""
    return User.objects.normalize_email(email.strip()).lower()


class SignupForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"), widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        # Lazy: in the language of the page that shows it.
        help_text=lazy(password_validation.password_validators_help_text_html, str)(),
    )
    company = forms.CharField(
        label=_("Company or project name"),
        max_length=200,
        help_text=_("The name of your account; you can invite teammates to it."),
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
    )
    # Carried through from /signup/?ref=<code>: the tenant that invited this one.
    ref = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)

    def __init__(self, *args, invitation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.invitation = invitation
        if invitation is not None:
            # Joining an existing tenant: the address is the invited one and
            # no tenant of one's own is created.
            self.fields["email"].initial = invitation.email
            self.fields["email"].widget.attrs["readonly"] = True
            del self.fields["company"]
            del self.fields["ref"]

    def clean_email(self):
        email = normalise_email(self.cleaned_data["email"])
        if self.invitation is not None and email != self.invitation.email:
            raise forms.ValidationError(
                gettext("This invitation is for %(email)s; sign up with that address.")
                % {"email": self.invitation.email}
            )
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(
                gettext(
                    "An account with this address already exists. Log in, or reset "
                    "your password if you forgot it."
                )
            )
        return email

    def clean_password(self):
        password = self.cleaned_data["password"]
        email = self.data.get("email", "")
        password_validation.validate_password(password, User(email=email))
        return password

    def clean_company(self):
        name = self.cleaned_data["company"].strip()
        if not name:
            raise forms.ValidationError(gettext("Enter a name for your account."))
        return name

    def clean_ref(self) -> Tenant | None:
        """The inviting tenant, or None. An unknown code is not the person's
        mistake to fix, so it is dropped rather than refused."""
        code = self.cleaned_data.get("ref", "").strip()
        if not code:
            return None
        return Tenant.objects.filter(referral_code=code).first()


class LoginForm(AuthenticationForm):
    """Django's login form with the address matched in any letter case."""

    username = forms.EmailField(
        label=_("Email"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("The email address or the password is not right."),
    }

    def clean(self):
        if self.cleaned_data.get("username"):
            self.cleaned_data["username"] = normalise_email(
                self.cleaned_data["username"]
            )
        return super().clean()


class EmailChangeForm(forms.Form):
    new_email = forms.EmailField(
        label=_("New email address"),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password = forms.CharField(
        label=_("Current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_new_email(self):
        email = normalise_email(self.cleaned_data["new_email"])
        if email == self.user.email:
            raise forms.ValidationError(gettext("This is already your address."))
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(gettext("Another account uses this address."))
        return email

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(gettext("The password is not right."))
        return password


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("Email address"))
    role = forms.ChoiceField(
        label=_("Role"),
        choices=Membership.Role.choices,
        initial=Membership.Role.MEMBER,
        help_text=_(
            "Owners manage keys, billing and members; members use keys and see usage."
        ),
    )

    def clean_email(self):
        return normalise_email(self.cleaned_data["email"])


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices)
