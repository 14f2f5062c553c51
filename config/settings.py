"""
Switchboard settings, read from environment variables.

With no environment at all Switchboard runs on its embedded default: SQLite,
an in-process cache and Celery tasks executed eagerly. Production sets
DATABASE_URL (PostgreSQL) and REDIS_URL.
"""

import ipaddress
import os
from decimal import Decimal
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def envstr(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")
# The embedded default: nothing to install or configure for a first run.
EMBEDDED = not DATABASE_URL

SECRET_KEY = envstr("SWITCHBOARD_SECRET_KEY", "")
DEBUG = envbool("SWITCHBOARD_DEBUG", EMBEDDED)
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SWITCHBOARD_SECRET_KEY must be set outside debug mode")
    SECRET_KEY = "insecure-embedded-default-do-not-use-in-production"

ALLOWED_HOSTS = envstr("SWITCHBOARD_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
CSRF_TRUSTED_ORIGINS = [
    origin
    for origin in os.environ.get("SWITCHBOARD_CSRF_TRUSTED_ORIGINS", "").split(",")
    if origin
]

# HTTPS. Outside debug mode the session and CSRF cookies are Secure and HSTS
# is on; SWITCHBOARD_INSECURE_HTTP=1 turns both off for plain-HTTP trials.
# Every setting below can also be set by its own name. TLS usually ends at a
# proxy, which then redirects plain HTTP itself and says which requests came
# over HTTPS in a header: SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto,https".
_https_only = not envbool("SWITCHBOARD_INSECURE_HTTP", DEBUG)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", _https_only)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", _https_only)
SECURE_HSTS_SECONDS = envint(
    "SECURE_HSTS_SECONDS", 365 * 24 * 3600 if _https_only else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
SECURE_SSL_HOST = envstr("SECURE_SSL_HOST", "") or None
SECURE_REDIRECT_EXEMPT = [
    pattern
    for pattern in os.environ.get("SECURE_REDIRECT_EXEMPT", "").split(",")
    if pattern
]
SECURE_CONTENT_TYPE_NOSNIFF = envbool("SECURE_CONTENT_TYPE_NOSNIFF", True)
SECURE_REFERRER_POLICY = envstr("SECURE_REFERRER_POLICY", "same-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = envstr(
    "SECURE_CROSS_ORIGIN_OPENER_POLICY", "same-origin"
)
SECURE_PROXY_SSL_HEADER = None
if _proxy_header := envstr("SECURE_PROXY_SSL_HEADER", ""):
    # "X-Forwarded-Proto,https": the header as sent, or as Django's META names it.
    _name, _, _value = _proxy_header.partition(",")
    _name = _name.strip().upper().replace("-", "_")
    if not _value.strip():
        raise RuntimeError("SECURE_PROXY_SSL_HEADER must be 'Header-Name,value'")
    SECURE_PROXY_SSL_HEADER = (
        _name if _name.startswith("HTTP_") else f"HTTP_{_name}",
        _value.strip(),
    )
# check --deploy's advice that cannot apply: the redirect to HTTPS belongs to
# the proxy that ends TLS (and probes talk plain HTTP to the workers), and
# HSTS preloading is a commitment to the browsers' lists made on purpose.
SILENCED_SYSTEM_CHECKS = [
    *([] if SECURE_SSL_REDIRECT else ["security.W008"]),
    *([] if SECURE_HSTS_PRELOAD or not SECURE_HSTS_SECONDS else ["security.W021"]),
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    # Swagger UI and ReDoc served from our own static files (/api/docs/), no CDN.
    "drf_spectacular_sidecar",
    "config.apps.SwitchboardConfig",
    "accounts",
    "audit",
    "billing",
    "relay",
    "portal",
    "api",
    "console",
    # Staff second factor (accounts/twofactor.py): TOTP devices and recovery
    # codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language of every page: the switcher's cookie, else Accept-Language.
    # The /v1 API never passes through this stack (config/asgi.py): its
    # errors stay in English, as OpenAI's do; this middleware keeps the
    # management API's (/api/) in English too.
    "config.middleware.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "console.middleware.StaffAreaMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "config.asgi.application"

if EMBEDDED:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / envstr("SWITCHBOARD_SQLITE_PATH", "db.sqlite3"),
            # Concurrent requests write from several threads: wait for the
            # lock instead of failing with "database is locked".
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
            # A file, not shared memory: the tests' live servers write from
            # several threads, and only a file honours the busy timeout.
            "TEST": {"NAME": str(BASE_DIR / "test-db.sqlite3")},
        }
    }
else:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=600, conn_health_checks=True
        )
    }

AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

if REDIS_URL:
    CACHES = {
        "default": {
            # Redis, with this process's memory standing in while it is away.
            "BACKEND": "config.cache.FallbackRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": envstr("SWITCHBOARD_CACHE_PREFIX", "sb"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
# Compiled by `make run` and `make test` (manage.py compilemessages).
LOCALE_PATHS = [BASE_DIR / "locale"]
# The switcher's choice (Django's set_language) outlives the browser session.
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Vision requests carry images inline: allow large JSON bodies.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("SWITCHBOARD_MAX_REQUEST_BYTES", 32 * 1024 * 1024)

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# SWITCHBOARD_LOG_FORMAT=json: every line is one JSON object (ops.logs),
# uvicorn's, Django's and Celery's included, and each /v1 request writes one
# line to `switchboard.requests` (ops.requestlog). Otherwise (`make run`)
# plain text, without the per-request lines.
LOG_JSON = envstr("SWITCHBOARD_LOG_FORMAT", "text").strip().lower() == "json"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "ops.logs.JsonFormatter"}},
    "filters": {"forbidden": {"()": "config.logs.ForbiddenWithoutTraceback"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            **({"formatter": "json"} if LOG_JSON else {}),
        }
    },
    "root": {"handlers": ["console"], "level": envstr("SWITCHBOARD_LOG_LEVEL", "INFO")},
    "loggers": {
        # httpx and stripe log every upstream or Stripe call at INFO: far too much.
        "httpx": {"level": "WARNING"},
        "stripe": {"level": "WARNING"},
        "switchboard.requests": {"level": "INFO" if LOG_JSON else "WARNING"},
        # A 403 is one line, not a traceback.
        "django.request": {"filters": ["forbidden"]},
        # Loggers with handlers of their own (uvicorn's, Django's defaults)
        # write through the JSON handler instead.
        **(
            {
                name: {"handlers": ["console"], "propagate": False}
                for name in ("uvicorn", "uvicorn.access", "django.server")
            }
            | {"django": {"handlers": [], "propagate": True}}
            if LOG_JSON
            else {}
        ),
    },
}

# Celery: Redis as broker in production, tasks run inline without it.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE = {
    "release-expired-holds": {
        "task": "billing.tasks.release_expired_holds",
        "schedule": envint("SWITCHBOARD_HOLD_SWEEP_SECONDS", 60),
    },
    "release-dead-workers-holds": {
        "task": "billing.tasks.release_dead_workers_holds",
        "schedule": envint("SWITCHBOARD_WORKER_SWEEP_SECONDS", 15),
    },
    "purge-idempotency-records": {
        "task": "relay.tasks.purge_idempotency_records",
        "schedule": 3600,
    },
    "probe-disabled-keys": {
        "task": "relay.tasks.probe_disabled_keys",
        "schedule": envint("SWITCHBOARD_KEY_PROBE_SECONDS", 300),
    },
    "apply-price-changes": {
        "task": "billing.tasks.apply_price_changes",
        "schedule": 60,
    },
    "expire-promo-credit": {
        "task": "billing.tasks.expire_promo_credit",
        "schedule": 600,
    },
    "low-balance-alerts": {
        "task": "billing.tasks.send_low_balance_alerts",
        "schedule": 60,
    },
    "reconcile-stripe": {
        "task": "billing.tasks.reconcile_stripe_payments",
        "schedule": envint("SWITCHBOARD_RECONCILE_SECONDS", 600),
    },
}

# --- Switchboard ------------------------------------------------------------

# Fernet key for upstream API keys at rest. In debug mode a key derived from
# SECRET_KEY is used so a first run needs no set-up.
SWITCHBOARD_ENCRYPTION_KEY = envstr("SWITCHBOARD_ENCRYPTION_KEY", "")
if not SWITCHBOARD_ENCRYPTION_KEY and not DEBUG:
    raise RuntimeError("SWITCHBOARD_ENCRYPTION_KEY must be set outside debug mode")

# The built-in `demo` provider answers locally; never enable it where a real
# customer could pick it by accident.
SWITCHBOARD_DEMO_PROVIDER = envbool("SWITCHBOARD_DEMO_PROVIDER", EMBEDDED)

# How long a process trusts its cached copy of an API key: a revoked key stops
# working on every process within this many seconds.
SWITCHBOARD_KEY_CACHE_SECONDS = envint("SWITCHBOARD_KEY_CACHE_SECONDS", 3)
# How long a process trusts its cached copy of channels and prices.
SWITCHBOARD_CATALOG_CACHE_SECONDS = envint("SWITCHBOARD_CATALOG_CACHE_SECONDS", 5)

# A hold older than this is considered abandoned and is released by the
# periodic sweep: the backstop for a hold whose process cannot be told dead
# (see billing.workers). Must exceed the longest upstream call.
SWITCHBOARD_HOLD_TTL_SECONDS = envint("SWITCHBOARD_HOLD_TTL_SECONDS", 15 * 60)
# Each serving process says it is alive this often; one silent for the dead
# bound is taken for dead and its holds are released by the next sweep,
# which runs on every live process and in Celery beat this often.
SWITCHBOARD_WORKER_HEARTBEAT_SECONDS = envint("SWITCHBOARD_WORKER_HEARTBEAT_SECONDS", 5)
SWITCHBOARD_WORKER_DEAD_SECONDS = envint("SWITCHBOARD_WORKER_DEAD_SECONDS", 20)
SWITCHBOARD_WORKER_SWEEP_SECONDS = envint("SWITCHBOARD_WORKER_SWEEP_SECONDS", 15)

# Who may scrape /metrics: a bearer token, or an address in these networks.
SWITCHBOARD_METRICS_TOKEN = envstr("SWITCHBOARD_METRICS_TOKEN", "")
SWITCHBOARD_METRICS_ALLOW = tuple(
    ipaddress.ip_network(entry.strip(), strict=False)
    for entry in envstr("SWITCHBOARD_METRICS_ALLOW", "127.0.0.1/32,::1/128").split(",")
    if entry.strip()
)

# A reserve or settle whose database connection breaks is retried this many
# times on a fresh connection. A settlement still failing then is written to
# the journal in this directory (one append-only file per process, on local
# disk: see billing.journal) and replayed when the database is back.
SWITCHBOARD_DB_RETRIES = envint("SWITCHBOARD_DB_RETRIES", 3)
SWITCHBOARD_JOURNAL_DIR = Path(
    envstr("SWITCHBOARD_JOURNAL_DIR", str(BASE_DIR / "var" / "journal"))
)

# How far below zero a wallet may go, in USD; see "Overdraft policy" in the
# README. Zero means never.
SWITCHBOARD_OVERDRAFT_LIMIT_USD = Decimal(
    envstr("SWITCHBOARD_OVERDRAFT_LIMIT_USD", "0")
)

# Starter credit: granted once per verified email address, spent before paid
# credit, and whatever is left of it expires after this many days.
SWITCHBOARD_STARTER_CREDIT_USD = Decimal(
    envstr("SWITCHBOARD_STARTER_CREDIT_USD", "1.00")
)
SWITCHBOARD_STARTER_CREDIT_DAYS = envint("SWITCHBOARD_STARTER_CREDIT_DAYS", 30)
# Models promotional credit may pay for, comma-separated; empty: every model.
SWITCHBOARD_PROMO_MODELS = frozenset(
    name.strip()
    for name in os.environ.get("SWITCHBOARD_PROMO_MODELS", "").split(",")
    if name.strip()
)
# Credited to an inviter once the tenant it invited makes its first paid top-up.
SWITCHBOARD_REFERRAL_REWARD_USD = Decimal(
    envstr("SWITCHBOARD_REFERRAL_REWARD_USD", "5.00")
)

# Stripe top-ups. Amounts are whole US dollars. STRIPE_API_BASE points the
# SDK elsewhere than api.stripe.com (the test suite's local fake).
STRIPE_SECRET_KEY = envstr("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = envstr("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = envstr("STRIPE_API_BASE", "")
SWITCHBOARD_TOPUP_PRESETS_USD = [
    int(amount)
    for amount in envstr("SWITCHBOARD_TOPUP_PRESETS_USD", "10,25,50,100").split(",")
]
SWITCHBOARD_TOPUP_MIN_USD = envint("SWITCHBOARD_TOPUP_MIN_USD", 5)
SWITCHBOARD_TOPUP_MAX_USD = envint("SWITCHBOARD_TOPUP_MAX_USD", 10_000)
# Reconciliation looks this far back for paid sessions whose webhook was lost.
SWITCHBOARD_RECONCILE_HOURS = envint("SWITCHBOARD_RECONCILE_HOURS", 48)

# Email: SMTP through EMAIL_HOST. The console backend writes every message to
# the log, verification, reset and invitation links included: debug mode uses
# it when EMAIL_HOST is unset; outside debug mode it must be asked for by name
# (SWITCHBOARD_EMAIL_BACKEND=console), and config.apps warns of it at start.
EMAIL_HOST = envstr("EMAIL_HOST", "")
_email_backend = envstr(
    "SWITCHBOARD_EMAIL_BACKEND", "smtp" if EMAIL_HOST or not DEBUG else "console"
)
EMAIL_BACKEND = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
}.get(_email_backend.strip().lower(), "")
if not EMAIL_BACKEND:
    raise RuntimeError("SWITCHBOARD_EMAIL_BACKEND must be smtp or console")
if EMAIL_BACKEND.endswith(".smtp.EmailBackend") and not EMAIL_HOST:
    raise RuntimeError(
        "EMAIL_HOST (an SMTP server) must be set, or "
        "SWITCHBOARD_EMAIL_BACKEND=console to write emails, links included, "
        "to the log on purpose"
    )
SWITCHBOARD_EMAILS_TO_LOG = EMAIL_BACKEND.endswith(".console.EmailBackend")
EMAIL_PORT = envint("EMAIL_PORT", 587)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "Switchboard <no-reply@localhost>")

# Upstream calls.
SWITCHBOARD_UPSTREAM_CONNECT_TIMEOUT = float(
    envstr("SWITCHBOARD_UPSTREAM_CONNECT_TIMEOUT", "5")
)
SWITCHBOARD_UPSTREAM_READ_TIMEOUT = float(
    envstr("SWITCHBOARD_UPSTREAM_READ_TIMEOUT", "300")
)
# A /v1 request body not wholly received in this many seconds gets a 408.
SWITCHBOARD_BODY_READ_TIMEOUT_SECONDS = float(
    envstr("SWITCHBOARD_BODY_READ_TIMEOUT_SECONDS", "30")
)
# Upstream attempts (keys and channels) for one request before giving up
# with 502/504, and the base of the jittered exponential pause between them.
SWITCHBOARD_MAX_ATTEMPTS = envint("SWITCHBOARD_MAX_ATTEMPTS", 3)
SWITCHBOARD_RETRY_BACKOFF_SECONDS = float(
    envstr("SWITCHBOARD_RETRY_BACKOFF_SECONDS", "0.05")
)
# Circuit breakers (relay/breakers.py): this many failures within the window
# open a channel's or key's breaker for the cool-down.
SWITCHBOARD_BREAKER_FAILURES = envint("SWITCHBOARD_BREAKER_FAILURES", 5)
SWITCHBOARD_BREAKER_WINDOW_SECONDS = envint("SWITCHBOARD_BREAKER_WINDOW_SECONDS", 60)
SWITCHBOARD_BREAKER_COOLDOWN_SECONDS = envint(
    "SWITCHBOARD_BREAKER_COOLDOWN_SECONDS", 30
)
# Each open stream holds one upstream connection for its whole length: a
# process must serve 1,000 streams at once (bench/README.md, streams). Its
# open-file limit must allow two descriptors per stream.
SWITCHBOARD_UPSTREAM_MAX_CONNECTIONS = envint(
    "SWITCHBOARD_UPSTREAM_MAX_CONNECTIONS", 2048
)
# Threads that run the hot path's database statements next to the event loop.
SWITCHBOARD_DB_THREADS = envint("SWITCHBOARD_DB_THREADS", 8)

# --- Portal -----------------------------------------------------------------

STATICFILES_DIRS = [BASE_DIR / "static"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/app/"
LOGOUT_REDIRECT_URL = "home"
# The signed-in tenant, its role and its wallet for every page's header.
TEMPLATES[0]["OPTIONS"]["context_processors"].append("portal.context_processors.portal")
# How long the emailed links (address verification, change of address, an
# invitation to a tenant) stay valid.
SWITCHBOARD_VERIFY_EMAIL_MAX_AGE_SECONDS = 3 * 24 * 3600
SWITCHBOARD_INVITATION_MAX_AGE_SECONDS = 7 * 24 * 3600
# Throttles: signups per IP per hour; failed logins per IP and address per
# 15 minutes.
SWITCHBOARD_SIGNUPS_PER_IP_PER_HOUR = envint("SWITCHBOARD_SIGNUPS_PER_IP_PER_HOUR", 5)
SWITCHBOARD_LOGIN_FAILURES_PER_15_MIN = envint(
    "SWITCHBOARD_LOGIN_FAILURES_PER_15_MIN", 5
)

# --- Staff second factor and login throttles (accounts/twofactor.py) --------

# Every staff account (is_staff or is_superuser) needs a TOTP code, or one of
# its recovery codes, before /admin/ and /console/ open. On by default
# outside debug mode.
SWITCHBOARD_STAFF_2FA = envbool("SWITCHBOARD_STAFF_2FA", not DEBUG)
OTP_TOTP_ISSUER = "Switchboard"
# The admin never shows a device's key or its QR code again.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# One login throttle for every way in (portal, admin, second-factor codes):
# failures per IP and address (above), and per IP for any address, per 15
# minutes.
SWITCHBOARD_LOGIN_FAILURES_PER_ACCOUNT_PER_15_MIN = envint(
    "SWITCHBOARD_LOGIN_FAILURES_PER_ACCOUNT_PER_15_MIN", 20
)
SWITCHBOARD_LOGIN_FAILURES_PER_IP_PER_15_MIN = envint(
    "SWITCHBOARD_LOGIN_FAILURES_PER_IP_PER_15_MIN", 50
)
# Password reset emails asked for, per IP and per address, per hour.
SWITCHBOARD_PASSWORD_RESETS_PER_IP_PER_HOUR = envint(
    "SWITCHBOARD_PASSWORD_RESETS_PER_IP_PER_HOUR", 10
)
SWITCHBOARD_PASSWORD_RESETS_PER_ADDRESS_PER_HOUR = envint(
    "SWITCHBOARD_PASSWORD_RESETS_PER_ADDRESS_PER_HOUR", 3
)

# Management API (/api/, the api app): Django REST framework with a
# drf-spectacular OpenAPI schema at /api/schema/. Requests authenticate with a
# management token (Authorization: Bearer sb-mgmt-...) or the portal's
# session (CSRF-checked for unsafe methods); members read, owners change.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First: its WWW-Authenticate challenge makes "no credentials" a 401.
        "api.authentication.ManagementTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "api.permissions.IsTenantMember",
        "api.permissions.OwnersChange",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.NewestFirst",
    "PAGE_SIZE": 50,
    # Per person (tokens and session alike), shared through the cache.
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": envstr("SWITCHBOARD_API_THROTTLE_RATE", "300/minute")
    },
    "EXCEPTION_HANDLER": "api.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Switchboard management API",
    "DESCRIPTION": (
        "Balance, API keys, usage, ledger, payments and management tokens of "
        "the caller's tenant. Money is integer nano-USD (1 USD = 10^9) and an "
        "exact USD string. Lists are newest first, paged by cursor (follow "
        '`next`). Errors: {"detail", "code", "errors"}.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/: Swagger UI from drf-spectacular-sidecar's static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/",
    # Separate request and response components: read-only fields are never
    # asked for in a request body.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "UsageStatusEnum": "relay.models.UsageRecord.Status",
        "PaymentStatusEnum": "billing.models.Payment.Status",
        "KeyStatusEnum": "api.serializers.KEY_STATUSES",
        "TokenStatusEnum": "api.serializers.TOKEN_STATUSES",
    },
}
