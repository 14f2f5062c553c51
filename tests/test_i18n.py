"""
English and Simplified Chinese: every marked string has a translation, pages
follow Accept-Language and the switcher's cookie, and /v1 stays in English.
"""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import translation

from tests import factories

ROOT = Path(settings.BASE_DIR)
PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.8"}


@pytest.fixture(autouse=True)
def _english_after():
    # LocaleMiddleware activates the request's language for the thread and
    # leaves it so: later tests render outside requests and expect English.
    yield
    translation.activate(settings.LANGUAGE_CODE)


def _entries(po_text: str) -> list[dict]:
    """The entries of a .po file (header excluded): msgctxt, msgid,
    msgid_plural, msgstr (plural forms joined), fuzzy."""
    entries = []
    for block in re.split(r"\n\s*\n", po_text.strip()):
        fields: dict[str, str] = {}
        key = None
        fuzzy = False
        for line in block.splitlines():
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
            elif line.startswith("#"):
                continue
            elif match := re.match(
                r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) "(.*)"$', line
            ):
                key = match.group(1)
                fields[key] = fields.get(key, "") + _unquote(match.group(2))
            elif line.startswith('"') and key:
                fields[key] += _unquote(line[1:-1])
        if fields.get("msgid", "") == "":
            continue  # the header
        strings = [v for k, v in fields.items() if k.startswith("msgstr")]
        entries.append(
            {
                "msgctxt": fields.get("msgctxt"),
                "msgid": fields["msgid"],
                "msgid_plural": fields.get("msgid_plural"),
                "msgstr": strings,
                "fuzzy": fuzzy,
            }
        )
    return entries


def _unquote(text: str) -> str:
    return ast.literal_eval(f'"{text}"')


def _untranslated(entries: list[dict]) -> list[str]:
    return [
        entry["msgid"]
        for entry in entries
        if entry["fuzzy"] or not entry["msgstr"] or not all(entry["msgstr"])
    ]


def _source_tree(destination: Path) -> None:
    """Copy what a fresh clone has (tracked and new files, not ignored ones),
    tests excepted: the strings people see."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if name.startswith("tests/") or not source.is_file():
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


# --- Completeness -----------------------------------------------------------


def test_every_entry_of_the_chinese_catalog_is_translated():
    entries = _entries(PO.read_text(encoding="utf-8"))
    assert len(entries) > 500
    assert _untranslated(entries) == []
    # Placeholders, plural forms and the header as msgfmt checks them.
    subprocess.run(
        ["msgfmt", "--check", "--output-file=/dev/null", str(PO)],
        check=True,
        capture_output=True,
    )


def test_every_string_marked_in_the_code_has_a_chinese_translation(tmp_path):
    """Extract the marked strings of templates and Python afresh (Django's
    makemessages, merged into a copy of the catalog): none may be missing
    from the catalog or left without a translation."""
    _source_tree(tmp_path)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL")
    }
    env["SWITCHBOARD_DEBUG"] = "1"
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "makemessages",
            "--locale=zh_Hans",
            "--no-obsolete",
            "--ignore=node_modules",
            "--ignore=staticfiles",
        ],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    committed = {
        (e["msgctxt"], e["msgid"], e["msgid_plural"])
        for e in _entries(PO.read_text(encoding="utf-8"))
    }
    extracted = _entries((tmp_path / PO.relative_to(ROOT)).read_text(encoding="utf-8"))
    assert len(extracted) > 500
    missing = [
        e["msgid"]
        for e in extracted
        if (e["msgctxt"], e["msgid"], e["msgid_plural"]) not in committed
    ]
    assert missing == [], "run `make messages` and translate these"
    assert _untranslated(extracted) == []


def test_the_catalog_parser_sees_untranslated_and_fuzzy_entries():
    sample = (
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Balance"\nmsgstr "余额"\n\n'
        'msgid "Keys"\nmsgstr ""\n\n'
        '#, fuzzy\nmsgid "Usage"\nmsgstr "用量"\n\n'
        'msgid "%(counter)s request"\nmsgid_plural "%(counter)s requests"\n'
        'msgstr[0] ""\n'
    )
    entries = _entries(sample)
    assert [e["msgid"] for e in entries] == [
        "Balance",
        "Keys",
        "Usage",
        "%(counter)s request",
    ]
    assert _untranslated(entries) == ["Keys", "Usage", "%(counter)s request"]


# --- Pages in Chinese ---------------------------------------------------------


@pytest.fixture
def compiled():
    assert MO.exists() and MO.stat().st_mtime >= PO.stat().st_mtime, (
        "compile the translations first: make test does (manage.py compilemessages)"
    )


def test_english_is_the_default(client, db, compiled):
    html = client.get(reverse("home")).content.decode()
    assert '<html lang="en">' in html
    assert "One OpenAI-compatible API for every model." in html


def test_accept_language_zh_cn_gives_the_public_pages_in_chinese(client, db, compiled):
    response = client.get(reverse("home"), **ZH)
    html = response.content.decode()
    assert response["content-language"] == "zh-hans"
    assert '<html lang="zh-hans">' in html
    assert "一个兼容 OpenAI 的 API，接入所有模型。" in html
    assert "One OpenAI-compatible API for every model." not in html
    pricing = client.get(reverse("pricing"), **ZH).content.decode()
    assert "按 Token 计费的模型" in pricing
    assert "费用计算器" in pricing


def test_the_signed_in_pages_follow_accept_language(client, alice, compiled):
    client.force_login(alice.user)
    html = client.get(reverse("dashboard"), **ZH).content.decode()
    assert "付费额度" in html and "最近错误" in html
    # Money keeps its one format.
    assert "$" in html
    keys = client.get(reverse("keys"), **ZH).content.decode()
    assert "API 密钥" in keys and "创建密钥" in keys
    billing = client.get(reverse("billing"), **ZH).content.decode()
    assert "余额不足提醒" in billing


def test_the_switcher_remembers_the_choice_in_a_cookie(client, db, compiled):
    response = client.post(
        reverse("set_language"), {"language": "zh-hans", "next": reverse("pricing")}
    )
    assert response.status_code == 302
    assert response["location"] == reverse("pricing")
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    # The cookie wins over an English Accept-Language from then on.
    html = client.get(reverse("pricing"), HTTP_ACCEPT_LANGUAGE="en-US").content.decode()
    assert "按 Token 计费的模型" in html
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    html = client.get(reverse("pricing"), **ZH).content.decode()
    assert "Models billed by the token" in html


def test_every_page_offers_the_switcher(client, alice, compiled):
    client.force_login(alice.user)
    html = client.get(reverse("usage")).content.decode()
    assert f'action="{reverse("set_language")}"' in html
    assert 'value="zh-hans"' in html and "简体中文" in html


def test_the_console_follows_the_language_too(client, db, settings, compiled):
    # The second factor is tested with the console; here it is off.
    settings.SWITCHBOARD_STAFF_2FA = False
    client.force_login(factories.staff("ops@example.com", superuser=True))
    response = client.get(reverse("console:tenants"), **ZH)
    html = response.content.decode()
    assert response.status_code == 200
    assert "最新租户" in html and "用量" in html
    # Django's own admin chrome comes translated with it.
    assert "退出" in html


def test_emails_go_out_in_the_language_of_the_page(client, db, compiled):
    response = client.post(
        reverse("signup"),
        {
            "email": "lin@example.com",
            "password": "a long passphrase 42",
            "company": "Lin",
        },
        **ZH,
    )
    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.subject == "确认您在 Switchboard 的邮箱地址"
    assert "请打开此链接" in message.body


def test_dates_are_written_the_chinese_way(client, alice, compiled):
    from datetime import UTC, datetime

    from billing.models import Wallet

    Wallet.objects.filter(tenant=alice.tenant).update(
        promo=1_000_000_000, promo_expires_at=datetime(2031, 5, 17, tzinfo=UTC)
    )
    client.force_login(alice.user)
    html = client.get(reverse("dashboard"), **ZH).content.decode()
    assert "2031年5月17日" in html
    english = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en").content
    assert "May 17, 2031" in english.decode()


def test_chart_days_are_labelled_in_the_language_of_the_page(compiled):
    from datetime import date

    from portal import selectors
    from portal.views.dashboard import spend_chart

    daily = selectors.DailySpend(
        days=[date(2031, 5, 16), date(2031, 5, 17)],
        series={"gpt-4.1-mini": {date(2031, 5, 17): 2_000_000}},
    )
    with translation.override("zh-hans"):
        chart = spend_chart(daily, title="t", what="model")
    assert [row[0] for row in chart.table_rows] == ["5月17日"]
    with translation.override("en"):
        chart = spend_chart(daily, title="t", what="model")
    assert [row[0] for row in chart.table_rows] == ["May 17"]


# --- /v1 stays English ----------------------------------------------------------


def test_v1_errors_stay_in_english_whatever_the_language(relay, alice, compiled):
    headers = {"accept-language": "zh-CN,zh;q=0.9", "cookie": "django_language=zh-hans"}
    unknown = httpx.post(
        f"{relay}/chat/completions",
        json={
            "model": "no-such-model",
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={**headers, "authorization": f"Bearer {alice.secret}"},
    )
    assert unknown.status_code == 404
    message = unknown.json()["error"]["message"]
    assert message.isascii() and "model" in message
    bad_key = httpx.get(
        f"{relay}/models", headers={**headers, "authorization": "Bearer sk-sb-nope"}
    )
    assert bad_key.status_code == 401
    assert bad_key.json()["error"]["message"].isascii()
    assert "content-language" not in bad_key.headers
