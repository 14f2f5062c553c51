"""
The operator's endpoints: /healthz (alive), /readyz (able to serve) and
/metrics (Prometheus). config.asgi serves them through its middleware-free
handler, like /v1: probes and scrapers pay for the view only, and reach a
worker by its address whatever ALLOWED_HOSTS says.

/healthz and /readyz are public and tell nothing but ok or what is down.
/metrics needs `Authorization: Bearer <SWITCHBOARD_METRICS_TOKEN>` or a
client address in SWITCHBOARD_METRICS_ALLOW (addresses or networks,
comma-separated; loopback by default).
"""

import hmac
import ipaddress
import os

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

from ops import checks, collectors


def _json(body: dict, status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["cache-control"] = "no-store"
    return response


@require_safe
async def healthz(request):
    """Alive: the process answers. Touches nothing else."""
    return _json({"status": "ok", "pid": os.getpid()})


@require_safe
async def readyz(request):
    """Ready: 200 when every check passes, 503 naming the one that fails."""
    found = await checks.readiness()
    ok = checks.ready(found)
    response = _json(
        {"status": "ok" if ok else "unavailable", "checks": found},
        status=200 if ok else 503,
    )
    # A failing check is logged once, when it starts failing (ops.checks),
    # not by Django on every probe.
    response._has_been_logged = True
    return response


@require_safe
async def metrics(request):
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    body, content_type = await collectors.exposition(
        request.META.get("HTTP_ACCEPT", "")
    )
    response = HttpResponse(body, content_type=content_type)
    response["cache-control"] = "no-store"
    return response


def _allowed_address(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    allow = settings.SWITCHBOARD_METRICS_ALLOW
    return any(ip.version == net.version and ip in net for net in allow)


def _refusal(request) -> JsonResponse | None:
    """Return why the scrape is refused, or None to serve it."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer ":
        token = settings.SWITCHBOARD_METRICS_TOKEN
        given = header[7:].strip()
        if token and hmac.compare_digest(given.encode(), token.encode()):
            return None
        return _json(
            {
                "error": {
                    "message": "Incorrect metrics token.",
                    "code": "invalid_metrics_token",
                }
            },
            status=401,
        )
    if _allowed_address(request.META.get("REMOTE_ADDR")):
        return None
    return _json(
        {
            "error": {
                "message": "Metrics are restricted: send Authorization: Bearer "
                "<SWITCHBOARD_METRICS_TOKEN>, or scrape from an address in "
                "SWITCHBOARD_METRICS_ALLOW.",
                "code": "metrics_forbidden",
            }
        },
        status=403,
    )
