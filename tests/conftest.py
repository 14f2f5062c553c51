import os
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from django.db import connection, connections, transaction
from django.test import TransactionTestCase

import config.db
from accounts import auth
from config import redis_guard
from relay import breakers, catalog, concurrency, limits, refusals
from relay.models import Channel
from tests import factories

# The test prices and the customer factory, also under the names tests
# import them by from here.
from tests.factories import CLAUDE_PRICES, GEMINI_PRICES, PRICES, Customer
from tests.factories import customer as make_customer
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.upstream import FakeUpstream
from tests.faults import chaos
from tests.servers import ThreadedServer

# The fake Stripe API and its fixtures, for every test that takes them.
pytest_plugins = ["tests.fakes.stripe"]


def pytest_configure(config):
    # CI runs against real PostgreSQL: a missing server must fail the run,
    # never fall back to SQLite.
    if os.environ.get("CI") and not os.environ.get("DATABASE_URL", "").startswith(
        ("postgres://", "postgresql://")
    ):
        raise pytest.UsageError("CI requires DATABASE_URL to point at PostgreSQL")


# The fault-injection table (tests/faults) is printed at the end of the run.
# Under pytest-xdist the faults run in a worker, so each worker hands its rows
# to the controller, which prints them; run in one process, this process is
# both.
_FAULT_ROWS = "fault_injection_rows"
_fault_rows: list[str] = []


def pytest_sessionfinish(session):
    rows = [outcome.row() for outcome in chaos.OUTCOMES]
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_FAULT_ROWS] = rows
    else:
        _fault_rows.extend(rows)


def pytest_testnodedown(node, error):
    _fault_rows.extend(getattr(node, "workeroutput", {}).get(_FAULT_ROWS, []))


def pytest_terminal_summary(terminalreporter):
    if _fault_rows:
        terminalreporter.section("fault injection")
        terminalreporter.write_line(chaos.HEADER)
        for row in _fault_rows:
            terminalreporter.write_line(row)


def pytest_collection_modifyitems(config, items):
    if connection.vendor == "postgresql" or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """
    The test database, committing without waiting for the disk: a test never
    outlives a crash, and the suite's tens of thousands of commits would
    otherwise each wait for a flush (milliseconds on this machine's disk).
    Set on the database, so that it also holds for the servers the tests
    start on it. Holds choose this for themselves in production
    (billing.holds), and tests/billing/test_hold_flush.py shows it.
    """
    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            name = connection.ops.quote_name(connection.settings_dict["NAME"])
            cursor.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
        connection.close()
    yield


# What post_migrate writes (content types and permissions) is kept between
# tests: emptying it would only have it written again.
KEPT_TABLES = frozenset({"django_content_type", "auth_permission"})


def _emptied_between_tests(self) -> None:
    """
    TransactionTestCase._fixture_teardown on PostgreSQL: DELETE the rows of
    the tables that have any, in one transaction, instead of Django's flush
    (a TRUNCATE of every table, then post_migrate). A TRUNCATE costs a few
    milliseconds a table whatever it holds; with some ninety tables that
    made each test that commits (a live relay, concurrency) half a second
    longer. Django's foreign keys are DEFERRABLE INITIALLY DEFERRED on
    PostgreSQL, so the order of the deletes does not matter.
    """
    for alias in self._databases_names(include_mirrors=False):
        db = connections[alias]
        if db.vendor != "postgresql":
            _django_fixture_teardown(self)
            return
        tables = [
            table
            for table in db.introspection.django_table_names(
                only_existing=True, include_views=False
            )
            if table not in KEPT_TABLES
        ]
        quoted = [db.ops.quote_name(table) for table in tables]
        anything = " UNION ALL ".join(
            f"SELECT {index} WHERE EXISTS (SELECT 1 FROM {name})"
            for index, name in enumerate(quoted)
        )
        with transaction.atomic(using=alias), db.cursor() as cursor:
            cursor.execute(anything)
            for (index,) in cursor.fetchall():
                cursor.execute(f"DELETE FROM {quoted[index]}")


_django_fixture_teardown = TransactionTestCase._fixture_teardown
TransactionTestCase._fixture_teardown = _emptied_between_tests


def _forget_process_state():
    auth.forget_cached_keys()
    catalog.forget()
    breakers.forget()
    limits.forget()
    concurrency.forget()
    refusals.forget()
    # An outage a test caused, or a Redis call that timed out on a busy
    # machine, pauses Redis for seconds: never into the next test.
    redis_guard.reset()
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        for pattern in ("*:breaker:*", "*:limit:*", "*:inflight:*"):
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


@pytest.fixture
def prices(db):
    factories.publish(PRICES)


@pytest.fixture
def claude_prices(db):
    factories.publish(CLAUDE_PRICES)


@pytest.fixture
def gemini_prices(db):
    factories.publish(GEMINI_PRICES)


@pytest.fixture
def alice(db, prices) -> Customer:
    return make_customer("alice")


@pytest.fixture
def bob(db, prices) -> Customer:
    return make_customer("bob")


# The fakes are served once a session; each test gets them reset, with no
# knobs set and nothing recorded, and a channel to each serving its prices.


@pytest.fixture(scope="session")
def fake_upstream():
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_anthropic_server():
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_gemini_server():
    with FakeGemini() as fake:
        yield fake


def _reset_around(fake) -> Iterator:
    fake.reset()
    yield fake
    fake.reset()


@pytest.fixture
def fake(fake_upstream):
    yield from _reset_around(fake_upstream)


@pytest.fixture
def fake_anthropic(fake_anthropic_server):
    yield from _reset_around(fake_anthropic_server)


@pytest.fixture
def fake_gemini(fake_gemini_server):
    yield from _reset_around(fake_gemini_server)


@pytest.fixture
def channel(db, fake) -> Channel:
    return factories.channel(
        "fake-openai", fake.url(), PRICES, key="sk-upstream-secret-1234"
    )


@pytest.fixture
def claude_channel(db, claude_prices, fake_anthropic) -> Channel:
    return factories.channel(
        "fake-anthropic",
        fake_anthropic.base_url,
        CLAUDE_PRICES,
        key="sk-ant-upstream",
        kind=Channel.Kind.ANTHROPIC,
    )


@pytest.fixture
def gemini_channel(db, gemini_prices, fake_gemini) -> Channel:
    return factories.channel(
        "fake-gemini",
        fake_gemini.url(),
        GEMINI_PRICES,
        key="gemini-upstream-key",
        kind=Channel.Kind.GEMINI,
    )


@pytest.fixture(scope="session")
def relay_server(django_db_setup, django_db_blocker, tmp_path_factory):
    from config.asgi import application

    # The in-process server's heartbeat would touch the database between
    # tests (which pytest-django forbids) and outlive each test's flush: the
    # liveness of real processes is tested on real processes (tests/faults).
    settings.SWITCHBOARD_WORKER_HEARTBEAT_SECONDS = 0
    settings.SWITCHBOARD_JOURNAL_DIR = tmp_path_factory.mktemp("journal")
    server = ThreadedServer(application, lifespan="on").start()
    yield server
    server.stop()
    config.db.shutdown()


@pytest.fixture
def relay(relay_server, transactional_db) -> str:
    """Return the base URL of a live Switchboard serving this test's data."""
    return f"{relay_server.base_url}/v1"
