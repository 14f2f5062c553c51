import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import ApiKey, Tenant, User
from accounts.services import (
    api_key_create,
    api_key_revoke,
    email_verify,
    tenant_create,
)
from billing.models import ModelPrice
from billing.money import format_usd
from relay.models import Channel

DEMO_ADMIN = "admin@example.com"
DEMO_TENANT = "Demo tenant"
DEMO_MODEL = "gpt-4.1-mini"


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
            channel.model_names = list(
                # Chat models only: the demo answers chat, nothing else.
                ModelPrice.objects.filter(
                    is_active=True,
                    output_per_mtok__gt=0,
                    image_prices={},
                    image_output_tokens={},
                ).values_list("model", flat=True)
            )
            channel.save()
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

Try it:

curl {base_url}/v1/chat/completions \\
  -H "Authorization: Bearer {secret}" \\
  -H "Content-Type: application/json" \\
  -d '{{"model": "{DEMO_MODEL}",
       "messages": [{{"role": "user", "content": "Hello!"}}]}}'

python3 - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="{base_url}/v1", api_key="{secret}")
reply = client.chat.completions.create(
    model="{DEMO_MODEL}", messages=[{{"role": "user", "content": "Hello!"}}]
)
print(reply.choices[0].message.content, reply.usage)
PY
"""
        )
