"""
Representations of the management API. Money is given twice: as integer
nano-USD (1 USD = 10**9), the unit Switchboard counts in, and as an exact
USD decimal string with nine places ("1.250000000"); never as a float.
"""

from django.core.validators import RegexValidator
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.keys import ip_networks
from accounts.models import ApiKey
from api.models import ManagementToken
from billing.models import LedgerEntry, ModelPrice, Payment
from billing.money import NANO_PER_CENT, usd_string
from relay.models import UsageRecord
from relay.response_cache import MAX_TTL_SECONDS

USD_SCHEMA = {
    "type": "string",
    "pattern": r"^-?[0-9]+\.[0-9]{9}$",
    "example": "1.250000000",
    "description": "Exact amount in USD, nine decimal places.",
}
MAX_ALLOWED_MODELS = 200
KEY_STATUSES = ApiKey.Status.values
TOKEN_STATUSES = ["active", "revoked"]


@extend_schema_field(USD_SCHEMA)
class UsdField(serializers.ReadOnlyField):
    """A nano-USD integer attribute shown as an exact USD string."""

    def to_representation(self, value):
        return usd_string(value)


@extend_schema_field({**USD_SCHEMA, "nullable": True})
class OptionalUsdField(UsdField):
    pass


# What str.strip() removes: a name must have something else, and no NUL
# (which DRF refuses anyway). Spelled in \u escapes so that the schema's
# pattern (ECMA 262) and Python's re read it alike.
_SPACE = (
    r"\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)
NAME_PATTERN = rf"^[^\u0000]*[^\u0000{_SPACE}][^\u0000]*$"


class TextField(serializers.CharField):
    """
    A CharField that takes only JSON strings, not numbers made into text,
    and measures max_length before stripping: the length the schema states.
    """

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class NameField(TextField):
    """A name a person gives: not blank, at most 100 characters."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 100)
        super().__init__(**kwargs)
        self.validators.append(
            RegexValidator(NAME_PATTERN, "Give a name that is not blank.")
        )


_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_NETWORK_PATTERN = rf"^{_OCTET}(\.{_OCTET}){{3}}/(3[0-2]|[12]?[0-9])$"


@extend_schema_field(
    {
        "anyOf": [
            {"type": "string", "format": "ipv4"},
            {"type": "string", "format": "ipv6"},
            {"type": "string", "pattern": IPV4_NETWORK_PATTERN},
        ],
        "description": "An IPv4 or IPv6 address, or a network (10.0.0.0/8; "
        "IPv6 networks such as 2001:db8::/32 too).",
    }
)
class IpField(TextField):
    """An address or network of a key's IP allowlist."""


class KnownModelField(TextField):
    """A model of the price list (api.schema lists them in the schema)."""


class BalanceSerializer(serializers.Serializer):
    balance = serializers.IntegerField(help_text="nano-USD, promotional included.")
    balance_usd = UsdField(source="balance")
    promo = serializers.IntegerField(
        help_text="nano-USD of promotional (starter) credit, spent first."
    )
    promo_usd = UsdField(source="promo")
    promo_expires_at = serializers.DateTimeField(allow_null=True)
    paid = serializers.IntegerField(help_text="nano-USD: balance - promo.")
    paid_usd = UsdField(source="paid")
    held = serializers.IntegerField(
        help_text="nano-USD reserved for requests in flight."
    )
    held_usd = UsdField(source="held")
    available = serializers.IntegerField(
        help_text="nano-USD new requests can reserve: balance - held."
    )
    available_usd = UsdField(source="available")
    plan = serializers.CharField(
        source="plan_name", allow_null=True, help_text="Null: catalog prices."
    )
    price_multiplier = serializers.DecimalField(
        max_digits=6,
        decimal_places=4,
        help_text="Catalog prices are multiplied by this for the tenant.",
    )
    low_balance_threshold = serializers.IntegerField(
        allow_null=True,
        help_text="nano-USD; the owners are emailed when the balance falls below.",
    )
    low_balance_threshold_usd = OptionalUsdField(source="low_balance_threshold")


class BudgetSerializer(serializers.Serializer):
    period = serializers.ChoiceField(
        choices=["daily", "monthly", "lifetime"],
        read_only=True,
        help_text="daily: the UTC day; monthly: the UTC month; lifetime: for good.",
    )
    cap = serializers.IntegerField(read_only=True, help_text="nano-USD per period.")
    cap_usd = UsdField(source="cap")
    spent = serializers.IntegerField(
        read_only=True, help_text="nano-USD charged in the current period."
    )
    spent_usd = UsdField(source="spent")
    held = serializers.IntegerField(
        read_only=True, help_text="nano-USD held for requests in flight."
    )
    held_usd = UsdField(source="held")
    resets_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When the next period starts (UTC); null: never (lifetime).",
    )


def _cap_field(what: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=2**63 - 1,
        help_text=f"nano-USD {what}; null removes the budget, absent leaves it.",
    )


class BudgetsSetSerializer(serializers.Serializer):
    """New caps: a request that could go over one gets 402 budget_exceeded."""

    daily = _cap_field("per UTC day")
    monthly = _cap_field("per UTC month")
    lifetime = _cap_field("for good")


class ApiKeySerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=KEY_STATUSES, read_only=True)
    created_by = serializers.SlugRelatedField(
        slug_field="email", read_only=True, allow_null=True
    )

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "status",
            "allowed_models",
            "allowed_ips",
            "rpm_limit",
            "tpm_limit",
            "max_in_flight",
            "cache_ttl",
            "created_by",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = NameField()
    allowed_models = serializers.ListField(
        child=KnownModelField(max_length=100),
        required=False,
        max_length=MAX_ALLOWED_MODELS,
        help_text="Models the key may use; empty or absent: every model.",
    )
    expires_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="After this the key is refused; absent: it never expires. "
        "Must be in the future.",
    )
    allowed_ips = serializers.ListField(
        child=IpField(max_length=50),
        required=False,
        max_length=100,
        help_text="Addresses or networks the key may be used from, e.g. "
        '"10.0.0.0/8"; empty or absent: anywhere.',
    )
    rpm_limit = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**31 - 1,
        help_text="Requests per minute; absent: no limit.",
    )
    tpm_limit = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**31 - 1,
        help_text="Tokens per minute (prompt and output); absent: no limit.",
    )
    max_in_flight = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**31 - 1,
        help_text="Requests served at once on every server together; more get "
        "429 concurrency_limit_exceeded. Absent: no limit.",
    )
    cache_ttl = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=MAX_TTL_SECONDS,
        help_text="Seconds to answer repeats of the key's deterministic requests "
        "(temperature 0 or a seed) from the response cache; absent or 0: only "
        "requests that ask with x-switchboard-cache.",
    )
    budgets = BudgetsSetSerializer(
        required=False,
        help_text="The key's budgets, as PUT /api/keys/{id}/budgets/ takes them; "
        "absent: none.",
    )

    def validate_allowed_ips(self, entries: list[str]) -> list[str]:
        try:
            return [str(network) for network in ip_networks(entries)]
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate_allowed_models(self, names: list[str]) -> list[str]:
        names = list(dict.fromkeys(names))
        known = set(
            ModelPrice.objects.filter(model__in=names).values_list("model", flat=True)
        )
        unknown = [name for name in names if name not in known]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown model: {', '.join(unknown)}. The pricing page lists "
                "every model."
            )
        return names

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("The expiry must be in the future.")
        return value


class ApiKeyCreatedSerializer(ApiKeySerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The key itself (sk-sb-...): shown this once, never again.",
    )
    budgets = BudgetSerializer(
        source="budget_uses",
        many=True,
        read_only=True,
        help_text="The key's budgets, as GET /api/keys/{id}/budgets/ gives them.",
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "budgets", "secret"]
        read_only_fields = fields


class KeyRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix"]
        read_only_fields = fields


class UsageSerializer(serializers.ModelSerializer):
    key = KeyRefSerializer(
        source="api_key",
        read_only=True,
        allow_null=True,
        help_text="Null once the key is deleted.",
    )
    cost_usd = UsdField(source="cost")
    charged_usd = UsdField(source="charged")
    tags = serializers.DictField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The request's `metadata` pairs with text values (16 at most).",
    )

    class Meta:
        model = UsageRecord
        fields = [
            "request_id",
            "created_at",
            "key",
            "model",
            "endpoint",
            "end_user",
            "tags",
            "stream",
            "status",
            "http_status",
            "prompt_tokens",
            "cached_tokens",
            "cache_write_tokens",
            "completion_tokens",
            "reasoning_tokens",
            "image_input_tokens",
            "images",
            "usage_source",
            "price_multiplier",
            "cost",
            "cost_usd",
            "charged",
            "charged_usd",
            "latency_ms",
            "ttfb_ms",
            "error",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "cost": {"help_text": "nano-USD at the prices applied."},
            "charged": {"help_text": "nano-USD taken from the balance."},
            "end_user": {
                "help_text": "Whom the request named as its end user (OpenAI's "
                "`user`, Anthropic's `metadata.user_id`); empty if none."
            },
        }


class LedgerEntrySerializer(serializers.ModelSerializer):
    amount_usd = UsdField(source="amount")
    promo_amount_usd = UsdField(source="promo_amount")

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "created_at",
            "kind",
            "amount",
            "amount_usd",
            "promo_amount",
            "promo_amount_usd",
            "reference",
            "description",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "amount": {"help_text": "nano-USD; negative for charges."},
            "promo_amount": {
                "help_text": "nano-USD: the part of amount that moved promotional "
                "credit."
            },
            "reference": {
                "help_text": "What caused the entry (a request id for usage)."
            },
        }


@extend_schema_field(USD_SCHEMA)
class CentsAsUsdField(serializers.ReadOnlyField):
    def to_representation(self, value):
        return usd_string(value * NANO_PER_CENT)


class PaymentSerializer(serializers.ModelSerializer):
    amount_usd = CentsAsUsdField(source="amount_cents")
    refunded_usd = CentsAsUsdField(source="refunded_cents")
    checkout_url = serializers.SerializerMethodField(
        help_text="Stripe Checkout, to finish paying; null once not open."
    )

    class Meta:
        model = Payment
        fields = [
            "id",
            "created_at",
            "status",
            "amount_cents",
            "amount_usd",
            "currency",
            "refunded_cents",
            "refunded_usd",
            "disputed_cents",
            "paid_at",
            "checkout_url",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_checkout_url(self, payment: Payment) -> str | None:
        if payment.status == Payment.Status.OPEN and payment.checkout_url:
            return payment.checkout_url
        return None


class TokenSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="email", read_only=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = ManagementToken
        fields = [
            "id",
            "name",
            "prefix",
            "status",
            "user",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=TOKEN_STATUSES))
    def get_status(self, token: ManagementToken) -> str:
        return "revoked" if token.revoked_at else "active"


class TokenCreateSerializer(serializers.Serializer):
    name = NameField()


class TokenCreatedSerializer(TokenSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The token itself (sb-mgmt-...): shown this once, never again.",
    )

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class RefusalKeySerializer(serializers.Serializer):
    id = serializers.IntegerField(source="api_key_id")
    name = serializers.CharField(source="api_key__name")
    prefix = serializers.CharField(source="api_key__prefix")


class RefusalSerializer(serializers.Serializer):
    key = RefusalKeySerializer(source="*")
    status = serializers.IntegerField(help_text="The HTTP status refused with.")
    code = serializers.CharField(
        help_text="The error's code, e.g. rate_limit_exceeded."
    )
    count = serializers.IntegerField(source="refused")
    last_at = serializers.DateTimeField(
        source="last_minute", help_text="The minute of the last of them (UTC)."
    )


class RefusalListSerializer(serializers.Serializer):
    results = RefusalSerializer(many=True)
