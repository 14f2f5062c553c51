from decimal import Decimal
from functools import cache

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from accounts.models import ApiKey, Tenant
from billing.models import Prices
from billing.pricing import UnitPrices
from relay import crypto


class Channel(models.Model):
    """An upstream provider endpoint that serves some models."""

    class Kind(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible"
        AZURE = "azure", "Azure OpenAI"
        ANTHROPIC = "anthropic", "Anthropic"
        GEMINI = "gemini", "Google Gemini"
        DEMO = "demo", "Demo (answers locally)"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OPENAI)
    base_url = models.URLField(
        blank=True, help_text="For example https://api.openai.com/v1"
    )
    model_names = models.JSONField(
        default=list, help_text="Public model names this channel serves."
    )
    model_map = models.JSONField(
        default=dict,
        blank=True,
        help_text="Upstream name of a public model where they differ, e.g. "
        '{"gpt-4.1": "my-gpt41-deployment"}.',
    )
    api_version = models.CharField(
        max_length=32, blank=True, help_text="Azure OpenAI's api-version."
    )
    responses_api = models.BooleanField(
        "serves the Responses API",
        default=True,
        help_text="OpenAI-compatible and Azure channels: the upstream serves "
        "/v1/responses itself. Untick for vendors that speak only chat "
        "completions (DeepSeek, vLLM...): Responses API requests are then "
        "translated to chat completions.",
    )
    connect_timeout = models.FloatField(
        null=True,
        blank=True,
        help_text="Seconds to connect; empty: SWITCHBOARD_UPSTREAM_CONNECT_TIMEOUT.",
    )
    read_timeout = models.FloatField(
        null=True,
        blank=True,
        help_text="Seconds to wait for each piece of the answer; empty: "
        "SWITCHBOARD_UPSTREAM_READ_TIMEOUT.",
    )
    priority = models.IntegerField(
        default=0, help_text="Higher priority channels are tried first."
    )
    weight = models.PositiveIntegerField(
        default=1, help_text="Share of traffic among channels of the same priority."
    )
    is_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-priority", "name"]

    def __str__(self) -> str:
        return self.name

    def add_key(self, secret: str, label: str = "") -> "UpstreamKey":
        """Store another upstream API key for this (saved) channel."""
        key = UpstreamKey(channel=self, label=label)
        key.secret = secret
        key.save()
        return key

    def clean(self):
        if self.kind != self.Kind.DEMO and not self.base_url:
            raise ValidationError({"base_url": "Required for this kind of channel."})
        if not isinstance(self.model_names, list) or not all(
            isinstance(m, str) and m for m in self.model_names
        ):
            raise ValidationError({"model_names": "A list of model names."})
        if not isinstance(self.model_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v
            for k, v in self.model_map.items()
        ):
            raise ValidationError(
                {"model_map": "An object mapping public to upstream model names."}
            )
        if self.kind == self.Kind.AZURE and not self.api_version:
            raise ValidationError({"api_version": "Azure OpenAI needs an api-version."})


class UpstreamKey(models.Model):
    """
    One of a channel's upstream API keys, encrypted at rest. A channel with
    several keys uses them in rotation.
    """

    channel = models.ForeignKey(
        Channel, on_delete=models.CASCADE, related_name="upstream_keys"
    )
    label = models.CharField(max_length=100, blank=True)
    secret_encrypted = models.TextField(editable=False)
    is_enabled = models.BooleanField(default=True)
    auto_disabled = models.BooleanField(
        default=False,
        help_text="Disabled by the relay (the upstream refused it); the health "
        "probe re-enables it once the upstream accepts it again.",
    )
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["channel", "pk"]

    def __str__(self) -> str:
        return f"{self.channel}: {self.masked}"

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)

    @secret.setter
    def secret(self, plain: str) -> None:
        self.secret_encrypted = crypto.encrypt(plain)

    @property
    def masked(self) -> str:
        return crypto.mask(self.secret) if self.secret_encrypted else "—"


class ChannelCost(Prices):
    """
    What the upstream behind a channel charges us for a model: the cost side
    of the margin. Usage records keep the cost computed at request time.
    """

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="costs")
    model = models.CharField(max_length=100, help_text="The public model name.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["channel", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "model"], name="one_cost_per_channel_model"
            )
        ]

    def __str__(self) -> str:
        return f"cost of {self.model} on {self.channel}"


class UsageRecord(models.Model):
    """One /v1 request after authentication: what it used and what it cost."""

    class Status(models.TextChoices):
        OK = "ok", "OK"
        CLIENT_CLOSED = "client_closed", "Client disconnected"
        UPSTREAM_CLOSED = "upstream_closed", "Upstream dropped the stream"
        UPSTREAM_ERROR = "upstream_error", "Upstream error"
        REJECTED = "rejected", "Rejected by upstream"

    class Source(models.TextChoices):
        REPORTED = "reported", "Reported by upstream"
        ESTIMATED = "estimated", "Estimated"
        NONE = "none", "No usage"
        # Answered from the response cache (relay.response_cache): the
        # tokens are the stored answer's, charged at the cache hit price.
        CACHE = "cache", "Response cache"

    request_id = models.CharField(max_length=64, unique=True)
    # Each indexed by (it, -created_at) in Meta, which serves lookups by it
    # alone: every request inserts a row, and an index more is a write more.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="usage", db_index=False
    )
    api_key = models.ForeignKey(
        ApiKey,
        null=True,
        on_delete=models.SET_NULL,
        related_name="usage",
        db_index=False,
    )
    channel = models.ForeignKey(
        Channel, null=True, on_delete=models.SET_NULL, db_index=False
    )
    # The channel's key that served the request: a stored Responses API
    # answer is reachable only through the upstream account that made it.
    # Not enforced by the database: every insert would check and share-lock
    # the key's row, and a key deleted since leaves no one to route to anyway.
    upstream_key = models.ForeignKey(
        UpstreamKey,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    endpoint = models.CharField(max_length=64, default="chat.completions")
    # The Responses API id of the answer (`resp_...`), for previous_response_id
    # and GET/DELETE /v1/responses/{id}.
    response_id = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100)
    # Whom the customer says the request is for (OpenAI's `user`, Anthropic's
    # metadata.user_id) and its tags (OpenAI's `metadata` pairs), to attribute
    # spend: relay.metering.attribution bounds both.
    end_user = models.CharField(max_length=256, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    # "auto" when relay.auto chose `model` for the request; empty otherwise.
    routed_from = models.CharField(max_length=16, blank=True)
    stream = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices)
    http_status = models.PositiveSmallIntegerField()
    prompt_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    # The part of cache_write_tokens written for an hour (Anthropic's 1h TTL).
    cache_write_1h_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    # The part of completion_tokens the model spent reasoning (billed as output).
    reasoning_tokens = models.PositiveIntegerField(default=0)
    # The part of prompt_tokens that is image tokens (GPT Image models).
    image_input_tokens = models.PositiveIntegerField(default=0)
    # The part of image_input_tokens read from the cache (also in cached_tokens).
    cached_image_input_tokens = models.PositiveIntegerField(default=0)
    # Images returned, billed at per_image_price (0 for models billed by tokens).
    images = models.PositiveIntegerField(default=0)
    usage_source = models.CharField(max_length=16, choices=Source.choices)
    # Prices applied, in nano-USD per token: later price edits never rewrite
    # what a past request cost.
    input_price = models.BigIntegerField(default=0)
    cached_input_price = models.BigIntegerField(default=0)
    cache_write_price = models.BigIntegerField(default=0)
    output_price = models.BigIntegerField(default=0)
    image_input_price = models.BigIntegerField(default=0)
    cache_write_1h_price = models.BigIntegerField(default=0)
    cached_image_input_price = models.BigIntegerField(default=0)
    # Set when the prices above are the model's long-context ones: the
    # prompt had more tokens than this.
    long_context_threshold = models.PositiveIntegerField(null=True, blank=True)
    per_request_price = models.BigIntegerField(default=0)
    per_image_price = models.BigIntegerField(
        default=0, help_text="nano-USD per image, for the quality and size asked"
    )
    # The tenant's plan multiplier, applied to the cost at the prices above.
    price_multiplier = models.DecimalField(
        max_digits=6, decimal_places=4, default=Decimal("1.0000")
    )
    cost = models.BigIntegerField(default=0, help_text="nano-USD at the prices applied")
    charged = models.BigIntegerField(
        default=0, help_text="nano-USD taken from the wallet"
    )
    upstream_cost = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="nano-USD the channel's upstream charges for this usage at "
        "its cost prices; empty when the channel has none for the model.",
    )
    uncached_cost = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Cache hits: nano-USD the answer would have cost at the model's "
        "prices (the plan's multiplier applied), had it not come from the cache.",
    )
    latency_ms = models.PositiveIntegerField(default=0)
    ttfb_ms = models.PositiveIntegerField(null=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-created_at"]),
            models.Index(fields=["api_key", "-created_at"]),
            # The staff console's time windows, overall and per channel.
            models.Index(fields=["-created_at"]),
            models.Index(fields=["channel", "-created_at"]),
            models.Index(
                fields=["tenant", "response_id"],
                name="usage_response_id",
                condition=~models.Q(response_id=""),
            ),
            # Partial: requests without an end user cost the index nothing.
            models.Index(
                fields=["tenant", "end_user", "-created_at"],
                name="usage_end_user",
                condition=~models.Q(end_user=""),
            ),
        ]

    def __str__(self) -> str:
        return self.request_id

    @classmethod
    def unsaved(cls, **values) -> "UsageRecord":
        """
        A new record of `values`, keyed by attribute name (tenant_id), every
        field not given at its default: UsageRecord(**values) in half the
        CPU. Django's keyword form costs 0.5 us per field, for every field
        (the relay builds one per request); its positional form does not.
        """
        record = cls(
            *[
                values.pop(attname) if attname in values else field.get_default()
                for attname, field in _columns(cls)
            ]
        )
        if values:
            raise TypeError(f"UsageRecord has no field {', '.join(values)}")
        return record

    def unit_prices(self) -> UnitPrices:
        """The per-unit prices this request was charged at (its snapshot)."""
        return UnitPrices(
            input=self.input_price,
            cached_input=self.cached_input_price,
            output=self.output_price,
            cache_write=self.cache_write_price,
            image_input=self.image_input_price,
            per_image=self.per_image_price,
            per_request=self.per_request_price,
            cache_write_1h=self.cache_write_1h_price,
            cached_image_input=self.cached_image_input_price,
        )


@cache
def _columns(model: type[models.Model]) -> tuple[tuple[str, models.Field], ...]:
    """(attribute name, field) of each column, in the order Django's
    positional constructor takes them."""
    return tuple((field.attname, field) for field in model._meta.concrete_fields)


class RefusalCount(models.Model):
    """
    How many requests of one key were refused in one minute with one code
    (relay.refusals): counted in memory and added here every few seconds,
    never written per refused request.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.CASCADE, related_name="refusal_counts"
    )
    minute = models.DateTimeField()
    status = models.PositiveSmallIntegerField()
    code = models.CharField(max_length=64)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "minute", "status", "code"],
                name="refusal_count_unique",
            )
        ]
        indexes = [models.Index(fields=["tenant", "-minute"])]

    def __str__(self) -> str:
        return f"{self.api_key_id} {self.minute:%Y-%m-%d %H:%M} {self.code}"


class IdempotencyRecord(models.Model):
    """
    A POST /v1 request sent with an Idempotency-Key (relay.idempotency): in
    flight until it is answered, then its answer, replayed to repeats until
    `expires_at`.
    """

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        DONE = "done"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of the path and the body as sent: a repeat must match it.
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices)
    request_id = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True)
    headers = models.JSONField(default=dict)
    body = models.BinaryField(default=bytes)
    stream = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    # In flight: when a process that crashed is presumed gone; done: when the
    # answer is forgotten.
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "key"], name="idempotency_key_unique"
            )
        ]
        indexes = [models.Index(fields=["expires_at"])]

    def __str__(self) -> str:
        return f"{self.tenant_id}:{self.key}"


class AutoTiers(models.Model):
    """
    The models that `model: "auto"` chooses from (relay.auto), cheapest and
    least capable first. One row (pk 1), edited in the console or the admin,
    each edit audited; until staff save one, DEFAULT: the seeded catalog's
    GPT-4.1 family. An empty list turns `auto` off.
    """

    DEFAULT = ("gpt-4.1-nano", "gpt-4.1-mini", "gpt-4.1")
    SINGLETON = 1
    # More would make the middle and top tiers (relay.auto) say little.
    MAX_TIERS = 10

    tiers = models.JSONField(
        default=list,
        blank=True,
        help_text="Model names, cheapest first, e.g. "
        '["gpt-4.1-nano", "gpt-4.1-mini", "gpt-4.1"]. Empty: no auto model.',
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "auto model tiers"
        verbose_name_plural = "auto model tiers"

    def __str__(self) -> str:
        return " → ".join(self.tiers) or "(auto off)"

    @classmethod
    def current(cls) -> tuple[str, ...]:
        """Return the tier list in force: the stored one, or DEFAULT."""
        stored = (
            cls.objects.filter(pk=cls.SINGLETON).values_list("tiers", flat=True).first()
        )
        return cls.DEFAULT if stored is None else tuple(stored)
