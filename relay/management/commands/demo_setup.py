import os
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import ApiKey, Tenant, User
from accounts.services import api_key_create, api_key_revoke
from billing.models import ModelPrice
from billing.money import format_usd
from onboarding.tenants import email_verify, tenant_create
from relay.models import Channel
from relay.providers.demo import image_family, is_embedding_model

DEMO_ADMIN = "admin@example.com"
DEMO_TENANT = "Demo tenant"
DEMO_MODEL = "gpt-4.1-mini"
# What the printed examples use when the catalog serves them.
DEMO_EMBEDDING_MODEL = "text-embedding-3-small"
DEMO_IMAGE_MODEL = "gpt-image-1"


@dataclass(frozen=True)
class DemoModels:
    """The models the printed examples use, all served by the demo channel."""

    chat: str
    # The cheapest chat model: Claude Code's small, fast model.
    fast: str
    embedding: str | None
    image: str | None


def _preferred(wanted: str, names: list[str]) -> str | None:
    return wanted if wanted in names else next(iter(names), None)


def demo_models(prices: list[ModelPrice]) -> DemoModels:
    """Pick the example models among the active `prices`, all served by the
    demo channel."""
    images = [p.model for p in prices if p.image_prices or p.image_output_tokens]
    embeddings = [p.model for p in prices if is_embedding_model(p.model)]
    chat = [p for p in prices if p.model not in images and p.model not in embeddings]
    if not chat:
        raise CommandError("The price catalog has no active chat model to serve.")
    cheapest = min(chat, key=lambda p: (p.input_per_mtok + p.output_per_mtok, p.model))
    return DemoModels(
        chat=_preferred(DEMO_MODEL, [p.model for p in chat]),
        fast=cheapest.model,
        embedding=_preferred(DEMO_EMBEDDING_MODEL, embeddings),
        image=_preferred(DEMO_IMAGE_MODEL, images),
    )


def _curl(base_url: str, secret: str, path: str, body: str) -> str:
    return f"""
curl {base_url}/v1/{path} \\
  -H "Authorization: Bearer {secret}" \\
  -H "Content-Type: application/json" \\
  -d '{body}'
"""


def codex_config(base_url: str, model: str) -> str:
    """Return the ~/.codex/config.toml that points Codex CLI at Switchboard."""
    return f"""model = "{model}"
model_provider = "switchboard"

[model_providers.switchboard]
name = "Switchboard"
base_url = "{base_url}/v1"
env_key = "SWITCHBOARD_API_KEY"
wire_api = "responses"
"""


# The virtual environment the printed Python example installs the openai
# package into: a fresh machine has no openai, and Debian's own pip refuses
# to install into the system's Python.
QUICKSTART_VENV = "~/.switchboard-quickstart"


def banner(base_url: str, secret: str, models: DemoModels) -> str:
    """
    Return the examples printed for the demo key: each works as printed, on
    a fresh machine, once what it names is installed (the Python example
    installs its package first). Each example follows a paragraph of prose
    ending in a colon, blank lines around both (tests/portal/
    test_quickstarts.py reads them that way and runs them).
    """
    chat_body = (
        f'{{"model": "{models.chat}",\n'
        '       "messages": [{"role": "user", "content": "Hello!"}]}'
    )
    parts = [
        "\nTry it with curl:\n",
        _curl(base_url, secret, "chat/completions", chat_body),
    ]
    if models.embedding:
        body = f'{{"model": "{models.embedding}", "input": "Hello!", "dimensions": 8}}'
        parts.append(_curl(base_url, secret, "embeddings", body))
    if models.image:
        # The cheapest quality the model offers: the demo credit is $1.
        quality = "low" if image_family(models.image) == "gpt-image" else "standard"
        body = (
            f'{{"model": "{models.image}", "prompt": "A lighthouse at dusk", '
            f'"quality": "{quality}", "size": "1024x1024"}}'
        )
        parts.append(_curl(base_url, secret, "images/generations", body))
    parts.append(
        f"""
Python, with the openai package in a virtual environment of its own:

python3 -m venv {QUICKSTART_VENV}
. {QUICKSTART_VENV}/bin/activate
pip install openai
python3 - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="{base_url}/v1", api_key="{secret}")
reply = client.chat.completions.create(
    model="{models.chat}", messages=[{{"role": "user", "content": "Hello!"}}]
)
print(reply.choices[0].message.content, reply.usage)
PY

Codex CLI (npm i -g @openai/codex): put this in ~/.codex/config.toml
(top-level keys above any [table]):

{codex_config(base_url, models.chat)}
then run:

export SWITCHBOARD_API_KEY={secret}
codex exec --skip-git-repo-check "Say hello from Switchboard"

Claude Code (npm i -g @anthropic-ai/claude-code):

unset ANTHROPIC_API_KEY  # a key of your own would be sent instead
export ANTHROPIC_BASE_URL={base_url}
export ANTHROPIC_AUTH_TOKEN={secret}
export ANTHROPIC_MODEL={models.chat}
export ANTHROPIC_DEFAULT_HAIKU_MODEL={models.fast}
export ANTHROPIC_SMALL_FAST_MODEL={models.fast}
export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
claude -p "Say hello from Switchboard"
"""
    )
    return "".join(parts)


class Command(BaseCommand):
    help = (
        "Create a demo admin, a demo tenant with starter credits, a demo channel "
        "answering locally and a fresh demo API key, then print how to call it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url, **options):
        if not settings.SWITCHBOARD_DEMO_PROVIDER:
            raise CommandError(
                "The demo provider is disabled (SWITCHBOARD_DEMO_PROVIDER=0)."
            )
        password = os.environ.get("SWITCHBOARD_DEMO_ADMIN_PASSWORD", "switchboard-demo")
        with transaction.atomic():
            admin, created = User.objects.get_or_create(
                email=DEMO_ADMIN, defaults={"is_staff": True, "is_superuser": True}
            )
            if created:
                admin.set_password(password)
                admin.save()
            tenant = Tenant.objects.filter(name=DEMO_TENANT).first()
            if tenant is None:
                tenant = tenant_create(name=DEMO_TENANT, owner=admin)
            # Starter credit, as a customer gets it: once, for a verified address.
            email_verify(user=admin)
            channel, _ = Channel.objects.get_or_create(
                name="demo", defaults={"kind": Channel.Kind.DEMO}
            )
            # Every active model: the demo answers chat, legacy completions,
            # embeddings and images, each for the models that fit.
            prices = list(ModelPrice.objects.filter(is_active=True).order_by("model"))
            channel.model_names = [price.model for price in prices]
            channel.save()
            models = demo_models(prices)
            # The secret of an earlier demo key cannot be shown again: replace it.
            for key in ApiKey.objects.filter(
                tenant=tenant, name="demo", revoked_at=None
            ):
                api_key_revoke(key=key)
            _, secret = api_key_create(tenant=tenant, name="demo", created_by=admin)
        tenant.wallet.refresh_from_db()
        balance = format_usd(tenant.wallet.balance)
        shown_password = password if created else "password set at first run"
        self.stdout.write(
            f"""
Switchboard demo is ready at {base_url}
  admin console: {base_url}/admin/  ({DEMO_ADMIN} / {shown_password})
  demo tenant balance: {balance}
  demo API key: {secret}
  demo channel: answers locally for {len(prices)} models: chat, completions,
    embeddings, images, and the Responses API and Messages (translated)
"""
        )
        self.stdout.write(banner(base_url, secret, models))
