"""
What a relay process loads: the ASGI application imports what /v1 needs
and leaves out what only other processes or pages use, each of which costs
every relay process its memory (bench/README.md has the figures).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Modules the relay never uses, and who uses them instead.
NOT_IN_A_RELAY = {
    "celery": "the task modules (billing.tasks, relay.tasks) and the worker",
    "kombu": "Celery",
    "drf_spectacular.plumbing": "/api's schema, loaded with /api's routes",
    "django.test": "DRF's test client, imported by drf-spectacular",
    "segno": "the staff second factor's enrolment page",
    "httpx._main": "httpx's command line",
    "rich": "httpx's command line",
}


def loaded_modules(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code` (a
    name blocked with None in sys.modules is not loaded)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.setdefault("SWITCHBOARD_DEBUG", "1")
    report = (
        "import json, sys\nprint(json.dumps([n for n, m in sys.modules.items() if m]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_the_asgi_application_loads_none_of_what_the_relay_does_not_use():
    loaded = loaded_modules("import config.asgi")
    assert "relay.proxy" in loaded
    found = {name: why for name, why in NOT_IN_A_RELAY.items() if name in loaded}
    assert found == {}


def test_a_task_module_brings_the_configured_celery_app():
    code = (
        "import django; django.setup()\n"
        "from billing.tasks import apply_stripe_event\n"
        "from config.celery import app\n"
        "assert apply_stripe_event.app is app, apply_stripe_event.app\n"
        "assert app.main == 'switchboard'\n"
    )
    assert "celery" in loaded_modules(code)
