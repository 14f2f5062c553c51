"""
The objects tests build, as plain functions with keyword defaults: people and
tenants (a customer is a user owning a funded tenant with one API key), staff,
channels pointing at a fake, published prices, usage records, payments, and
the OpenAI chat pieces (tools, tool calls) request payloads are made of.

Tenants, keys and credit go through the product's own services
(tenant_create, api_key_create, wallet_credit), so a test never starts from a
state the product could not reach; usage records and payments are stored as
the relay and the Stripe flow leave them. Name only what the test is about.
"""

import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group

from accounts.models import Membership, Tenant, User
from accounts.services import api_key_create
from billing.models import LedgerEntry, ModelPrice, Payment, Wallet
from billing.money import usd_to_nano
from billing.services import wallet_credit
from onboarding.tenants import tenant_create
from relay.catalog import ChannelInfo
from relay.models import Channel, UsageRecord

PASSWORD = "correct horse battery"
STAFF_PASSWORD = "staff password 123"

# Test prices, USD per 1M tokens: input, cached input, output, max output. The
# same figures as the published catalog, restated so tests do not depend on
# seed data surviving a transactional test's flush.
PRICES = {
    "gpt-4.1": ("2.00", "0.50", "8.00", 32_768),
    "gpt-4.1-mini": ("0.40", "0.10", "1.60", 32_768),
    "gpt-4.1-nano": ("0.10", "0.025", "0.40", 32_768),
}
# Anthropic's and Google's: input, cache read, output, max output, cache write.
CLAUDE_PRICES = {
    "claude-3-5-haiku-latest": ("0.80", "0.08", "4.00", 8_192, "1.00"),
}
GEMINI_PRICES = {
    "gemini-2.5-flash": ("0.30", "0.075", "2.50", 65_536, None),
}

# GPT Image 1's output tokens per image by "quality:size", restated from
# OpenAI's pages rather than read from the seed migration, so a typo in
# either shows.
GPT_IMAGE_TOKENS = {
    "low:1024x1024": 272,
    "low:1024x1536": 408,
    "low:1536x1024": 400,
    "medium:1024x1024": 1056,
    "medium:1024x1536": 1584,
    "medium:1536x1024": 1568,
    "high:1024x1024": 4160,
    "high:1024x1536": 6240,
    "high:1536x1024": 6208,
}

_serial = itertools.count(1)
_FIRST_KEY: Any = object()  # usage_record's default: the tenant's first key

# -- people and tenants -----------------------------------------------------


def user(email: str, password: str = PASSWORD, **fields) -> User:
    """Store a person who can sign in with `email` and `password`."""
    return User.objects.create_user(email, password, **fields)


def membership(
    tenant: Tenant, person: User, role: str = Membership.Role.MEMBER
) -> Membership:
    """Make `person` a member of `tenant` with `role`."""
    return Membership.objects.create(user=person, tenant=tenant, role=role)


def member(tenant: Tenant, email: str, role: str = Membership.Role.MEMBER) -> User:
    """Store a new person and make them a member of `tenant` with `role`."""
    person = user(email)
    membership(tenant, person, role)
    return person


def staff(email: str, *groups: str, superuser: bool = False) -> User:
    """
    Store a staff account in the role groups `groups` (accounts.roles), or a
    superuser. An account in no group is staff that reaches nothing.
    """
    if superuser:
        return User.objects.create_superuser(email, STAFF_PASSWORD)
    person = user(email, STAFF_PASSWORD, is_staff=True)
    for name in groups:
        # The groups come from console's data migration; a transactional
        # test's flush removes them, so make sure they exist.
        person.groups.add(Group.objects.get_or_create(name=name)[0])
    return person


@dataclass
class Customer:
    """A person owning a tenant, and the secret of the tenant's API key."""

    user: User
    tenant: Tenant
    secret: str

    @property
    def wallet(self) -> Wallet:
        return Wallet.objects.get(tenant=self.tenant)

    def fund(self, usd: "str | Decimal", reference: str = "test-grant") -> None:
        wallet_credit(
            tenant_id=self.tenant.pk,
            amount=usd_to_nano(usd),
            kind=LedgerEntry.Kind.GRANT,
            reference=f"{reference}:{self.tenant.pk}",
        )

    def set_balance(self, usd: "str | Decimal", reference: str = "balance") -> None:
        """Leave exactly `usd` of paid credit and nothing held, ledger included."""
        LedgerEntry.objects.filter(tenant=self.tenant).delete()
        Wallet.objects.filter(tenant=self.tenant).update(balance=0, held=0)
        if Decimal(usd):
            self.fund(usd, reference=reference)


def customer(name: str, usd: str = "10.00", **tenant_fields) -> Customer:
    """
    Store `name`@example.com owning "`Name` Corp" (tenant_create's other
    arguments by keyword), with an API key and `usd` of paid credit (none if
    empty).
    """
    owner = user(f"{name}@example.com")
    tenant = tenant_create(name=f"{name.title()} Corp", owner=owner, **tenant_fields)
    _, secret = api_key_create(tenant=tenant, name=f"{name}'s key", created_by=owner)
    made = Customer(user=owner, tenant=tenant, secret=secret)
    if usd:
        made.fund(usd)
    return made


# -- prices -----------------------------------------------------------------


def model_price(
    model: str, *, input_per_mtok="0", output_per_mtok="0", **fields
) -> ModelPrice:
    """
    Publish `model` at these USD prices (strings, numbers or Decimals), or
    republish it: fields not named keep what they were, or their defaults.
    """
    values = {
        "input_per_mtok": input_per_mtok,
        "output_per_mtok": output_per_mtok,
        "is_active": True,
        **fields,
    }
    for name in ModelPrice.USD_FIELDS:
        if values.get(name) is not None:
            values[name] = Decimal(str(values[name]))
    price, _ = ModelPrice.objects.update_or_create(model=model, defaults=values)
    return price


def publish(catalog: dict) -> None:
    """
    Publish every model of PRICES, CLAUDE_PRICES or GEMINI_PRICES; a cache
    write price only where the catalog has that column.
    """
    for model, (input_, cached, output, max_output, *write) in catalog.items():
        cache_write = {"cache_write_per_mtok": write[0]} if write else {}
        model_price(
            model,
            input_per_mtok=input_,
            output_per_mtok=output,
            cached_input_per_mtok=cached,
            max_output_tokens=max_output,
            **cache_write,
        )


def gpt_image_price() -> ModelPrice:
    """
    Publish GPT Image 1 as OpenAI prices it, per 1M tokens: text input $5
    (cached $1.25), image input $10, output $40, by GPT_IMAGE_TOKENS.
    """
    return model_price(
        "gpt-image-1",
        input_per_mtok="5.00",
        cached_input_per_mtok="1.25",
        image_input_per_mtok="10.00",
        output_per_mtok="40.00",
        image_output_tokens=GPT_IMAGE_TOKENS,
        max_output_tokens=0,
    )


# -- channels ---------------------------------------------------------------


def channel(
    name: str,
    base_url: str,
    models,
    *,
    key: str | None = "sk-upstream",
    kind: str = Channel.Kind.OPENAI,
    **fields,
) -> Channel:
    """
    Store an enabled channel serving `models` at `base_url` (a fake's), with
    one upstream key `key`, or none.
    """
    made = Channel.objects.create(
        name=name, kind=kind, base_url=base_url, model_names=list(models), **fields
    )
    if key is not None:
        made.add_key(key)
    return made


def also_serve(served_by: Channel, *models: str) -> Channel:
    """Have the channel `served_by` serve `models` besides its own."""
    served_by.model_names = [*served_by.model_names, *models]
    served_by.save()
    return served_by


def azure_channel(
    name: str, base_url: str, deployments: dict, *, api_version: str = "2024-10-21"
) -> Channel:
    """Store an Azure OpenAI channel serving each public model by its deployment."""
    return channel(
        name,
        base_url,
        deployments,
        kind=Channel.Kind.AZURE,
        key="azure-secret",
        api_version=api_version,
        model_map=dict(deployments),
    )


def channel_info(
    kind: str = "openai",
    name: str = "upstream",
    base_url: str = "http://upstream.invalid/v1",
    api_key: str = "",
    **fields,
) -> ChannelInfo:
    """The catalog's view of one channel, as an adapter or the router sees it."""
    values = {"id": 1, "priority": 0, "weight": 1, **fields}
    return ChannelInfo(
        kind=kind, name=name, base_url=base_url, api_key=api_key, **values
    )


# -- usage and payments -------------------------------------------------------


def usage_record(
    owner: Customer, *, api_key=_FIRST_KEY, charged: int = 1_000, **fields
) -> UsageRecord:
    """
    Store a usage record of `owner`'s as the relay settles one: an ok chat
    request on the tenant's first key (or `api_key`), charged `charged`
    nano-USD at cost.
    """
    if api_key is _FIRST_KEY:
        api_key = owner.tenant.api_keys.order_by("pk").first()
    values = {
        "request_id": f"req-{next(_serial)}",
        "tenant": owner.tenant,
        "api_key": api_key,
        "model": "gpt-4.1-mini",
        "status": UsageRecord.Status.OK,
        "http_status": 200,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "usage_source": UsageRecord.Source.REPORTED,
        "cost": charged,
        "charged": charged,
        **fields,
    }
    return UsageRecord.objects.create(**values)


def payment(owner: Customer, *, amount_cents: int = 2500, **fields) -> Payment:
    """Store a Stripe checkout `owner` started: open unless `status` says."""
    values = {
        "tenant": owner.tenant,
        "created_by": owner.user,
        "amount_cents": amount_cents,
        "stripe_session_id": f"cs_test_{next(_serial)}",
        **fields,
    }
    return Payment.objects.create(**values)


# -- OpenAI chat payloads -----------------------------------------------------


def function_tool(name: str, description: str, **properties: dict) -> dict:
    """A chat `tools` entry: a function whose named arguments are all required."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
            },
        },
    }


def assistant_calls(content: str | None, *calls: dict) -> dict:
    """A chat assistant message saying `content` and making `calls` (tool_call)."""
    return {"role": "assistant", "content": content, "tool_calls": list(calls)}


def tool_message(call_id: str, content) -> dict:
    """A chat `tool` message: the result of the call `call_id`."""
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def tool_call(call_id: str, name: str, arguments: str) -> dict:
    """An assistant message's `tool_calls` entry."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def bodies_lacking(model: str, field: str, *bad_values) -> list[dict]:
    """Request bodies for `model`: one without `field`, one per bad value of it."""
    return [{"model": model}, *({"model": model, field: bad} for bad in bad_values)]
