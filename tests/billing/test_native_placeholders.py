"""
The hot path's statements are written with named placeholders and sent with
PostgreSQL's own ($1, $2...), rewritten once (config.db._native), so that
psycopg does not parse the wide settlement statement on every request.
"""

import pytest

from billing.settlement import _settle_sql
from config.db import _bound, _native, pg_fetchone
from relay.models import UsageRecord


def test_names_become_numbered_in_order_of_first_use():
    query, names = _native("SELECT %(b)s, %(a)s, %(b)s + 1")
    assert query == b"SELECT $1, $2, $1 + 1"
    assert names == ("b", "a")


def test_a_doubled_percent_is_a_literal_percent():
    query, names = _native("SELECT 'x' LIKE 'x%%' AND %(n)s > 0")
    assert query == b"SELECT 'x' LIKE 'x%' AND $1 > 0"
    assert names == ("n",)


@pytest.mark.parametrize("sql", ["SELECT %s", "SELECT 5 % 2", "SELECT %(x)d"])
def test_any_other_percent_is_refused(sql):
    with pytest.raises(ValueError, match="placeholders"):
        _native(sql)


def test_arguments_follow_the_names_and_extra_parameters_are_left_out():
    assert _bound("SELECT %(b)s, %(a)s", {"a": 1, "b": 2, "unused": 3})[1] == [2, 1]
    with pytest.raises(KeyError):
        _bound("SELECT %(missing)s", {})


def test_the_settlement_statement_is_rewritten_whole():
    for with_budgets in (False, True):
        sql = _settle_sql(UsageRecord, with_budgets)
        # Beyond what psycopg caches: longer than 4 KB.
        assert len(sql) > 4096
        query, names = _native(sql)
        assert b"%(" not in query
        assert len(names) == len(set(names)) >= 50
        assert f"${len(names)}".encode() in query


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_runs_the_rewritten_statement():
    row = pg_fetchone(
        "SELECT %(a)s::int + %(b)s::int, %(a)s::int, '100%%'",
        {"a": 2, "b": 40},
    )
    assert row == (42, 2, "100%")
