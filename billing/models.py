import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Tenant
from billing.money import InexactPrice, nano_per_token
from billing.pricing import IMAGE_KEY

# A whole number of nano-USD, written out: "0.040", "0.000000001", "2".
USD_AMOUNT = re.compile(r"[0-9]+(\.[0-9]{1,9})?")


class Plan(models.Model):
    """A price level: every catalog price times `multiplier` for its tenants."""

    name = models.CharField(max_length=50, unique=True)
    multiplier = models.DecimalField(
        max_digits=6,
        decimal_places=4,
        default=Decimal("1.0000"),
        validators=[MinValueValidator(Decimal("0.0001"))],
        help_text="1.0000 charges catalog prices; 0.8500 charges 85% of them.",
    )
    description = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-multiplier", "name"]

    def __str__(self) -> str:
        return f"{self.name} (×{self.multiplier})"


class Wallet(models.Model):
    """
    A tenant's prepaid balance in nano-USD. `held` is the sum of open holds:
    credit reserved for requests in flight. `balance` only ever changes in the
    transaction that writes the LedgerEntry explaining it.

    `promo` is the promotional part of `balance` (starter credit): spent
    before paid credit, only on models promotional credit may pay for, and
    removed by an expiry row at `promo_expires_at`.
    """

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, primary_key=True, related_name="wallet"
    )
    balance = models.BigIntegerField(default=0)
    held = models.BigIntegerField(default=0)
    promo = models.BigIntegerField(default=0)
    promo_expires_at = models.DateTimeField(null=True, blank=True)
    plan = models.ForeignKey(
        Plan,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="wallets",
        help_text="Empty: catalog prices.",
    )
    low_balance_threshold = models.BigIntegerField(
        null=True, blank=True, help_text="nano-USD; email the owners below it."
    )
    # Set when the alert for the current crossing was sent, cleared once the
    # balance is back at or above the threshold: one email per crossing.
    low_balance_alerted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Wallet of {self.tenant}"


class LedgerEntry(models.Model):
    """An append-only record of one change of a wallet's balance."""

    class Kind(models.TextChoices):
        GRANT = "grant", _("Credit grant")
        USAGE = "usage", _("API usage")
        ADJUSTMENT = "adjustment", _("Staff adjustment")
        PAYMENT = "payment", _("Top-up")
        REFUND = "refund", _("Refund")
        DISPUTE = "dispute", _("Dispute")
        STARTER = "starter", _("Starter credit")
        EXPIRY = "expiry", _("Promotional credit expired")
        REDEMPTION = "redemption", _("Redeemed code")
        REFERRAL = "referral", _("Referral reward")

    # Indexed by (tenant, created_at) below, which serves lookups by tenant.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="ledger", db_index=False
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.BigIntegerField(help_text="nano-USD; negative for charges")
    # The part of `amount` that moved the promotional bucket (Wallet.promo).
    promo_amount = models.BigIntegerField(default=0)
    # Idempotency: the request id, payment event id or grant id that caused
    # this row. Replaying the cause can never write a second row.
    reference = models.CharField(max_length=128, unique=True)
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["tenant", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.reference})"


class Hold(models.Model):
    """Credit reserved for one request in flight, released when it settles."""

    # Every request inserts and deletes a row here, and every index is a
    # write more each time; the table holds only the requests in flight, so
    # the rare reads other than by request id (a dead worker's holds, the
    # sweep, sums) scan it. No index but the key and the sweep's.
    request_id = models.CharField(max_length=64, primary_key=True)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="holds", db_index=False
    )
    amount = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    # The process serving the request (billing.workers): when it dies, the
    # sweep releases its holds without waiting for `expires_at`.
    owner = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"hold {self.request_id}"


class Budget(models.Model):
    """
    A spend cap for one period: on a whole tenant (`api_key` empty) or on one
    of its keys. `spent` is what was charged in the period that began at
    `period_start` (UTC); `held` is the holds of requests in flight counted
    against it (BudgetHold). A request is held only if every budget of its
    key and tenant still has room for its hold (billing.holds).

    A period rolls over lazily: the first statement that touches the row in
    a new period starts it again from zero (billing.budgets.period_start).
    """

    class Period(models.TextChoices):
        DAILY = "daily", _("Daily")
        MONTHLY = "monthly", _("Monthly")
        LIFETIME = "lifetime", _("Lifetime")

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="budgets")
    api_key = models.ForeignKey(
        "accounts.ApiKey",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="budgets",
        help_text="Empty: the whole tenant's budget.",
    )
    period = models.CharField(max_length=8, choices=Period.choices)
    cap = models.BigIntegerField(
        validators=[MinValueValidator(0)], help_text="nano-USD per period"
    )
    spent = models.BigIntegerField(default=0)
    held = models.BigIntegerField(default=0)
    period_start = models.DateTimeField()
    # Alerts to the owners (billing.alerts): the highest share of the cap
    # (80 or 100) already told for the period that began at `alerted_period`.
    alerted_percent = models.PositiveSmallIntegerField(default=0)
    alerted_period = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "period"],
                condition=models.Q(api_key__isnull=True),
                name="budget_one_per_tenant_period",
            ),
            models.UniqueConstraint(
                fields=["api_key", "period"],
                condition=models.Q(api_key__isnull=False),
                name="budget_one_per_key_period",
            ),
        ]

    def __str__(self) -> str:
        owner = f"key {self.api_key_id}" if self.api_key_id else "tenant"
        return f"{self.get_period_display()} budget of {owner} ({self.tenant_id})"


class BudgetHold(models.Model):
    """One hold counted in one budget's `held`, given back with the hold."""

    # Indexed by the unique constraint, which leads with it.
    request_id = models.CharField(max_length=64)
    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="+")
    amount = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["request_id", "budget"], name="budget_hold_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.request_id} in budget {self.budget_id}"


class Worker(models.Model):
    """
    A process that places holds, and when it last said it was alive
    (billing.workers). A worker silent for longer than the dead bound is
    taken for dead and its holds are released.
    """

    name = models.CharField(max_length=100, primary_key=True)
    started_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.name


class StarterGrant(models.Model):
    """
    Starter credit given for one verified email address, at most once per
    address (however often it signs up again) and once per tenant.
    """

    # The address as billing.starter.email_key normalises it.
    email_key = models.CharField(max_length=254, unique=True)
    tenant = models.OneToOneField(
        Tenant, on_delete=models.PROTECT, related_name="starter_grant"
    )
    amount = models.BigIntegerField()
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"starter credit for {self.email_key}"


class Payment(models.Model):
    """One Stripe Checkout session a tenant opened to top up its wallet."""

    class Status(models.TextChoices):
        OPEN = "open", _("Awaiting payment")
        PROCESSING = "processing", _("Payment processing")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")

    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="payments"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    status = models.CharField(max_length=16, choices=Status.choices, default="open")
    stripe_session_id = models.CharField(max_length=255, unique=True)
    stripe_payment_intent = models.CharField(max_length=255, blank=True, db_index=True)
    checkout_url = models.URLField(max_length=2000, blank=True)
    refunded_cents = models.PositiveIntegerField(default=0)
    disputed_cents = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.stripe_session_id} ({self.status})"


class StripeEvent(models.Model):
    """
    A verified webhook event, recorded as it arrives and then applied once:
    its id makes replays no-ops. The payload is kept so that an event whose
    effects need the Stripe API can be applied later, by a task.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "Received, not applied yet"
        PROCESSED = "processed", "Applied"
        FAILED = "failed", "Could not be applied"

    event_id = models.CharField(max_length=255, primary_key=True)
    type = models.CharField(max_length=100)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True
    )
    payload = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class ReconciliationRun(models.Model):
    """One pass of billing.payments.payments_reconcile, for staff to see."""

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seen = models.PositiveIntegerField(default=0)
    credited = models.PositiveIntegerField(default=0)
    expired = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"reconciliation at {self.started_at:%Y-%m-%d %H:%M}"


class RedemptionBatch(models.Model):
    """Single-use codes staff generated together, each worth `value`."""

    name = models.CharField(max_length=100)
    value = models.BigIntegerField(help_text="nano-USD per code")
    count = models.PositiveIntegerField()
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "redemption batches"

    def __str__(self) -> str:
        return self.name


class RedemptionCode(models.Model):
    batch = models.ForeignKey(
        RedemptionBatch, on_delete=models.PROTECT, related_name="codes"
    )
    code = models.CharField(max_length=32, unique=True)
    redeemed_by = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    redeemed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.code


class Prices(models.Model):
    """
    What a model costs in USD per 1M tokens, per image and per request: the
    fields of a catalog price, a scheduled price change and a channel's cost.

    Image models are billed one of two ways, by "quality:size" of the image:
    by tokens (GPT Image: the upstream reports usage; `image_output_tokens`
    sizes the hold) or per image (DALL·E: the upstream reports no usage;
    `image_prices`, and no token price applies).
    """

    input_per_mtok = models.DecimalField("input $/1M", max_digits=12, decimal_places=3)
    cached_input_per_mtok = models.DecimalField(
        "cached input $/1M",
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Empty: cached tokens are billed as input.",
    )
    cache_write_per_mtok = models.DecimalField(
        "cache write $/1M",
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Prompt tokens written to the provider's cache (Anthropic). "
        "Empty: billed as input.",
    )
    cache_write_1h_per_mtok = models.DecimalField(
        "1-hour cache write $/1M",
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Prompt tokens written to the cache for an hour (Anthropic's "
        '"ttl": "1h", 2x input); the field above is the 5-minute write. '
        "Empty: billed as the 5-minute write.",
    )
    output_per_mtok = models.DecimalField(
        "output $/1M", max_digits=12, decimal_places=3
    )
    image_input_per_mtok = models.DecimalField(
        "image input $/1M",
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Image tokens in the prompt (GPT Image models). Empty: billed "
        "as input.",
    )
    cached_image_input_per_mtok = models.DecimalField(
        "cached image input $/1M",
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Image tokens in the prompt read from the provider's cache "
        "(GPT Image models). Empty: billed as cached input.",
    )
    per_request_usd = models.DecimalField(
        "$ per request",
        max_digits=12,
        decimal_places=9,
        default=0,
        help_text="A flat fee per request that produced something, on top of "
        "tokens (e.g. models that search the web).",
    )
    cache_hit_usd = models.DecimalField(
        "$ per cache hit",
        max_digits=12,
        decimal_places=9,
        default=0,
        help_text="What a request answered from Switchboard's response cache "
        "costs, instead of its tokens and fees (relay.response_cache). 0: free.",
    )
    # Long-context prices: a prompt of more than the threshold (all its
    # tokens, cache reads and writes included) is billed at these for every
    # token bucket but images, as Gemini 2.5 Pro and Claude Sonnet 4's 1M
    # context are above 200k tokens.
    long_context_threshold = models.PositiveIntegerField(
        "long context above (prompt tokens)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Prompts of more tokens than this are billed at the long-context "
        "prices below. Empty: one price whatever the prompt's length.",
    )
    long_input_per_mtok = models.DecimalField(
        "long-context input $/1M",
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Required with a threshold.",
    )
    long_cached_input_per_mtok = models.DecimalField(
        "long-context cached input $/1M",
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Empty: billed as long-context input.",
    )
    long_cache_write_per_mtok = models.DecimalField(
        "long-context cache write $/1M",
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="The 5-minute write. Empty: billed as long-context input.",
    )
    long_cache_write_1h_per_mtok = models.DecimalField(
        "long-context 1-hour cache write $/1M",
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Empty: billed as the long-context 5-minute write.",
    )
    long_output_per_mtok = models.DecimalField(
        "long-context output $/1M",
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Required with a threshold.",
    )
    image_output_tokens = models.JSONField(
        default=dict,
        blank=True,
        help_text="Image models billed by tokens: output tokens per image by "
        '"quality:size", e.g. {"low:1024x1024": 272}. Sizes the hold; "auto" '
        "is held at the largest.",
    )
    image_prices = models.JSONField(
        default=dict,
        blank=True,
        help_text='Image models billed per image: USD per image by "quality:size" '
        'as exact decimal strings, e.g. {"standard:1024x1024": "0.040"}.',
    )

    class Meta:
        abstract = True

    # The long-context prices, USD per 1M tokens.
    LONG_FIELDS = (
        "long_input_per_mtok",
        "long_cached_input_per_mtok",
        "long_cache_write_per_mtok",
        "long_cache_write_1h_per_mtok",
        "long_output_per_mtok",
    )
    # The prices written as USD amounts, then every price field.
    USD_FIELDS = (
        "input_per_mtok",
        "cached_input_per_mtok",
        "cache_write_per_mtok",
        "cache_write_1h_per_mtok",
        "output_per_mtok",
        "image_input_per_mtok",
        "cached_image_input_per_mtok",
        "per_request_usd",
        *LONG_FIELDS,
    )
    # USD amounts per request, not per token: 0 when empty.
    FLAT_FIELDS = ("per_request_usd", "cache_hit_usd")
    # What a request answered from the response cache costs: a catalog
    # price (a channel's upstream is not called for it).
    CACHE_HIT_FIELD = "cache_hit_usd"
    PRICE_FIELDS = (
        *USD_FIELDS,
        CACHE_HIT_FIELD,
        "long_context_threshold",
        "image_output_tokens",
        "image_prices",
    )

    def clean(self):
        for field in (name for name in self.USD_FIELDS if name not in self.FLAT_FIELDS):
            value = getattr(self, field)
            if value is None:
                continue
            if value < 0:
                raise ValidationError({field: "Prices cannot be negative."})
            try:
                nano_per_token(value)
            except InexactPrice as exc:
                raise ValidationError({field: str(exc)}) from exc
        for field in self.FLAT_FIELDS:
            value = getattr(self, field)
            if value is not None and value < 0:
                raise ValidationError({field: "Prices cannot be negative."})
        self._clean_long_context()
        _check_image_table(self.image_prices, "image_prices", _check_usd)
        _check_image_table(
            self.image_output_tokens, "image_output_tokens", _check_tokens
        )
        if self.image_prices and self.image_output_tokens:
            raise ValidationError(
                "An image model is billed either per image or by tokens: fill in "
                "image_prices or image_output_tokens, not both."
            )

    def _clean_long_context(self) -> None:
        if self.long_context_threshold is None:
            if any(getattr(self, name) is not None for name in self.LONG_FIELDS):
                raise ValidationError(
                    {
                        "long_context_threshold": "Long-context prices apply above a "
                        "threshold: set it, or leave the long-context prices empty."
                    }
                )
            return
        missing = {
            name: "Required with a long-context threshold."
            for name in ("long_input_per_mtok", "long_output_per_mtok")
            if getattr(self, name) is None
        }
        if missing:
            raise ValidationError(missing)


class ModelPrice(Prices):
    """
    The published price of a model, as charged now. Usage records keep a
    snapshot of the per-token prices they were charged at, and a change
    scheduled ahead (PriceChange) replaces these figures at its time.
    """

    model = models.CharField(max_length=100, unique=True)
    context_window = models.PositiveIntegerField(default=128_000)
    max_output_tokens = models.PositiveIntegerField(
        default=16_384, help_text="Worst case used to size holds without max_tokens."
    )
    reasoning = models.BooleanField(
        default=False,
        help_text="The model reasons: reasoning settings (effort, thinking) "
        "are passed on when a request is translated between formats; other "
        "models never see them.",
    )
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model"]

    def __str__(self) -> str:
        return self.model


class PriceChange(Prices):
    """
    New prices for a model from `effective_at` on. The relay charges them from
    that moment (its catalog knows pending changes ahead of time); a periodic
    task then copies them onto the ModelPrice and sets `applied_at`. Past
    usage keeps the prices it was charged at.
    """

    model_price = models.ForeignKey(
        ModelPrice, on_delete=models.CASCADE, related_name="changes"
    )
    effective_at = models.DateTimeField(db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["effective_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_price", "effective_at"], name="one_change_per_instant"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_price} from {self.effective_at:%Y-%m-%d %H:%M}"


def _check_image_table(table, field: str, check_value) -> None:
    """Refuse a table that is not {"quality:WxH": value} with valid values."""
    if not isinstance(table, dict):
        raise ValidationError({field: 'An object such as {"quality:1024x1024": ...}.'})
    for key, value in table.items():
        if not IMAGE_KEY.fullmatch(key):
            raise ValidationError(
                {field: f'"{key}" is not "quality:WIDTHxHEIGHT", e.g. "hd:1024x1024".'}
            )
        problem = check_value(value)
        if problem:
            raise ValidationError({field: f'"{key}": {problem}'})


def _check_usd(value) -> str:
    # A string, never a JSON number: floats cannot hold most prices exactly.
    if not isinstance(value, str) or not USD_AMOUNT.fullmatch(value):
        return 'a USD amount as a string with at most 9 decimals, e.g. "0.040".'
    return ""


def _check_tokens(value) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return "a positive whole number of tokens."
    return ""
