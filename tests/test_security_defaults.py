"""
Production-safe defaults: with debug off, Switchboard refuses to start
without SMTP unless told to write emails to the log (and then says so at
start), cookies are Secure with HSTS unless plain HTTP is asked for, every
SECURE_* setting comes from the environment, and `check --deploy` is clean.
Each runs a fresh process with a production environment and throwaway keys.
"""

import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from tests import factories

ROOT = Path(__file__).resolve().parent.parent
# What the suite's environment could say about the settings under test.
_DROPPED_PREFIXES = ("SWITCHBOARD_", "EMAIL_", "SECURE_", "DJANGO_")
_DROPPED_NAMES = ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "DATABASE_URL")


def production_env(**extra: str) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_DROPPED_PREFIXES) and key not in _DROPPED_NAMES
    }
    env.update(
        # Never connected to: the checks below need no database.
        DATABASE_URL="postgres://postgres@127.0.0.1:1/none",
        SWITCHBOARD_DEBUG="0",
        SWITCHBOARD_SECRET_KEY=secrets.token_urlsafe(50),
        SWITCHBOARD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        EMAIL_HOST="smtp.example.com",
    )
    env.update(extra)
    return {key: value for key, value in env.items() if value is not None}


def run(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


_PRINT_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({name: getattr(settings, name) for name in [
    "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
    "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SECURE_SSL_HOST",
    "SECURE_REFERRER_POLICY", "EMAIL_BACKEND",
]}))
"""


def production_settings(**extra: str) -> dict:
    env = production_env(DJANGO_SETTINGS_MODULE="config.settings", **extra)
    done = run(["-c", _PRINT_SETTINGS], env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_check_deploy_is_clean_with_production_settings():
    # As a deploy pipeline runs it: before any database is reachable
    # (production_env points at a closed port).
    env = production_env()

    done = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    assert "WARNING" not in done.stdout + done.stderr


def test_production_refuses_to_start_without_smtp():
    done = run(["manage.py", "check"], production_env(EMAIL_HOST=None))

    assert done.returncode != 0
    assert "EMAIL_HOST" in done.stderr
    assert "SWITCHBOARD_EMAIL_BACKEND=console" in done.stderr


def test_emails_to_the_log_on_purpose_warn_at_start():
    env = production_env(EMAIL_HOST=None, SWITCHBOARD_EMAIL_BACKEND="console")

    done = run(["manage.py", "check"], env)

    assert done.returncode == 0, done.stderr
    assert "SWITCHBOARD_EMAIL_BACKEND=console" in done.stderr
    assert "links included" in done.stderr


def test_smtp_is_used_and_nothing_warned_when_a_host_is_set():
    done = run(["manage.py", "check"], production_env())

    assert done.returncode == 0, done.stderr
    assert "SWITCHBOARD_EMAIL_BACKEND" not in done.stderr
    assert production_settings()["EMAIL_BACKEND"].endswith("smtp.EmailBackend")


def test_an_unknown_email_backend_is_refused():
    done = run(["manage.py", "check"], production_env(SWITCHBOARD_EMAIL_BACKEND="x"))

    assert done.returncode != 0
    assert "SWITCHBOARD_EMAIL_BACKEND must be smtp or console" in done.stderr


def test_production_cookies_are_secure_with_hsts():
    found = production_settings()

    assert found["SESSION_COOKIE_SECURE"] is True
    assert found["CSRF_COOKIE_SECURE"] is True
    assert found["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert found["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert found["SECURE_HSTS_PRELOAD"] is False
    # A proxy usually ends TLS and redirects plain HTTP itself.
    assert found["SECURE_SSL_REDIRECT"] is False
    assert found["SECURE_PROXY_SSL_HEADER"] is None


def test_plain_http_turns_secure_cookies_and_hsts_off():
    found = production_settings(SWITCHBOARD_INSECURE_HTTP="1")

    assert found["SESSION_COOKIE_SECURE"] is False
    assert found["CSRF_COOKIE_SECURE"] is False
    assert found["SECURE_HSTS_SECONDS"] == 0


def test_every_secure_setting_comes_from_the_environment():
    found = production_settings(
        SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="0",
        SECURE_HSTS_PRELOAD="1",
        SECURE_SSL_REDIRECT="1",
        SECURE_SSL_HOST="secure.example.com",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto,https",
        SECURE_REFERRER_POLICY="no-referrer",
        SESSION_COOKIE_SECURE="0",
    )

    assert found["SECURE_HSTS_SECONDS"] == 3600
    assert found["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert found["SECURE_HSTS_PRELOAD"] is True
    assert found["SECURE_SSL_REDIRECT"] is True
    assert found["SECURE_SSL_HOST"] == "secure.example.com"
    assert found["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert found["SECURE_REFERRER_POLICY"] == "no-referrer"
    assert found["SESSION_COOKIE_SECURE"] is False
    assert found["CSRF_COOKIE_SECURE"] is True


def test_a_proxy_header_without_a_value_is_refused():
    done = run(
        ["manage.py", "check"],
        production_env(SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"),
    )

    assert done.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER" in done.stderr


def test_debug_mode_keeps_plain_http_and_prints_emails():
    found = production_settings(SWITCHBOARD_DEBUG="1", EMAIL_HOST=None)

    assert found["SESSION_COOKIE_SECURE"] is False
    assert found["SECURE_HSTS_SECONDS"] == 0
    assert found["EMAIL_BACKEND"].endswith("console.EmailBackend")


# -- a 403 is one line --------------------------------------------------------


def test_a_forbidden_page_is_logged_without_a_traceback(client, alice, caplog):
    client.force_login(factories.member(alice.tenant, "carol@example.com"))

    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.post("/app/members/invite/", {"email": "x@example.com"})

    assert response.status_code == 403
    forbidden = [r for r in caplog.records if r.name == "django.request"]
    assert len(forbidden) == 1
    record = forbidden[0]
    assert record.getMessage() == "Forbidden (Permission denied): /app/members/invite/"
    assert record.exc_info is None
    assert "Traceback" not in caplog.text
