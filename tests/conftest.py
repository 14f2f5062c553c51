import os
from dataclasses import dataclass
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.db import connection

import config.db
from accounts import auth
from accounts.models import Tenant, User
from accounts.services import api_key_create
from billing.models import LedgerEntry, ModelPrice, Wallet
from billing.money import usd_to_nano
from billing.services import wallet_credit
from onboarding.tenants import tenant_create
from relay import breakers, catalog, limits
from relay.models import Channel
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.upstream import FakeUpstream
from tests.servers import ThreadedServer

# The fake Stripe API and its fixtures, for every test that takes them.
pytest_plugins = ["tests.fakes.stripe"]

# Test prices, USD per 1M tokens: input, cached input, output. The same
# figures as the published catalog, restated so tests do not depend on seed
# data surviving a transactional test's flush.
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


def pytest_configure(config):
    # CI runs against real PostgreSQL: a missing server must fail the run,
    # never fall back to SQLite.
    if os.environ.get("CI") and not os.environ.get("DATABASE_URL", "").startswith(
        ("postgres://", "postgresql://")
    ):
        raise pytest.UsageError("CI requires DATABASE_URL to point at PostgreSQL")


def pytest_collection_modifyitems(config, items):
    if connection.vendor == "postgresql" or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def _forget_process_state():
    auth.forget_cached_keys()
    catalog.forget()
    breakers.forget()
    limits.forget()
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        for pattern in ("*:breaker:*", "*:limit:*"):
            for key in client.scan_iter(match=pattern):
                client.delete(key)
        client.close()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Most tests make users: the default hasher's deliberate slowness would
    # be much of the time the suite takes.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_caches():
    _forget_process_state()
    yield
    _forget_process_state()


@dataclass
class Customer:
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


def make_customer(name: str, usd: str = "10.00") -> Customer:
    user = User.objects.create_user(f"{name}@example.com", "correct horse battery")
    tenant = tenant_create(name=f"{name.title()} Corp", owner=user)
    _, secret = api_key_create(tenant=tenant, name=f"{name}'s key", created_by=user)
    customer = Customer(user=user, tenant=tenant, secret=secret)
    if usd:
        customer.fund(usd)
    return customer


@pytest.fixture
def prices(db):
    for model, (input_, cached, output, max_output) in PRICES.items():
        ModelPrice.objects.update_or_create(
            model=model,
            defaults={
                "input_per_mtok": Decimal(input_),
                "cached_input_per_mtok": Decimal(cached),
                "output_per_mtok": Decimal(output),
                "max_output_tokens": max_output,
                "is_active": True,
            },
        )


def _price(catalog: dict) -> None:
    for model, (input_, read, output, max_output, write) in catalog.items():
        ModelPrice.objects.update_or_create(
            model=model,
            defaults={
                "input_per_mtok": Decimal(input_),
                "cached_input_per_mtok": Decimal(read),
                "cache_write_per_mtok": Decimal(write) if write else None,
                "output_per_mtok": Decimal(output),
                "max_output_tokens": max_output,
                "is_active": True,
            },
        )


@pytest.fixture
def claude_prices(db):
    _price(CLAUDE_PRICES)


@pytest.fixture
def gemini_prices(db):
    _price(GEMINI_PRICES)


@pytest.fixture
def alice(db, prices) -> Customer:
    return make_customer("alice")


@pytest.fixture
def bob(db, prices) -> Customer:
    return make_customer("bob")


@pytest.fixture(scope="session")
def fake_upstream():
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_upstream):
    fake_upstream.reset()
    yield fake_upstream
    fake_upstream.reset()


@pytest.fixture
def channel(db, fake) -> Channel:
    channel = Channel(
        name="fake-openai",
        kind=Channel.Kind.OPENAI,
        base_url=fake.url(),
        model_names=list(PRICES),
    )
    channel.save()
    channel.add_key("sk-upstream-secret-1234")
    return channel


@pytest.fixture(scope="session")
def fake_anthropic_server():
    fake = FakeAnthropic().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_anthropic(fake_anthropic_server):
    fake_anthropic_server.reset()
    yield fake_anthropic_server
    fake_anthropic_server.reset()


@pytest.fixture
def claude_channel(db, claude_prices, fake_anthropic) -> Channel:
    channel = Channel.objects.create(
        name="fake-anthropic",
        kind=Channel.Kind.ANTHROPIC,
        base_url=fake_anthropic.base_url,
        model_names=list(CLAUDE_PRICES),
    )
    channel.add_key("sk-ant-upstream")
    return channel


@pytest.fixture(scope="session")
def fake_gemini_server():
    fake = FakeGemini().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_gemini(fake_gemini_server):
    fake_gemini_server.reset()
    yield fake_gemini_server
    fake_gemini_server.reset()


@pytest.fixture
def gemini_channel(db, gemini_prices, fake_gemini) -> Channel:
    channel = Channel.objects.create(
        name="fake-gemini",
        kind=Channel.Kind.GEMINI,
        base_url=fake_gemini.url(),
        model_names=list(GEMINI_PRICES),
    )
    channel.add_key("gemini-upstream-key")
    return channel


@pytest.fixture(scope="session")
def relay_server(django_db_setup, django_db_blocker):
    from config.asgi import application

    server = ThreadedServer(application, lifespan="on").start()
    yield server
    server.stop()
    config.db.shutdown()


@pytest.fixture
def relay(relay_server, transactional_db) -> str:
    """Return the base URL of a live Switchboard serving this test's data."""
    return f"{relay_server.base_url}/v1"
