"""BittieTasks settings, all read from the environment.

With no environment at all this is the production shape with its safety on
(DEBUG off, a SECRET_KEY required). ``make run`` exports the embedded
defaults (SQLite, in-memory channel layer, eager Celery, console email);
``make test`` points at the local PostgreSQL and Redis. See .env.example.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from core.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-dev-key-only-for-make-run-and-tests"  # noqa: S105

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
SITE_NAME = "BittieTasks"
# Shown in a banner on every page when integrations run offline.
DEMO_MODE = env_bool("DEMO_MODE", DEBUG)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "core",
    "accounts",
    "tasks",
    "messaging",
    "matching",
    "payments",
    "reputation",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "marketplace.urls"
WSGI_APPLICATION = "marketplace.wsgi.application"
ASGI_APPLICATION = "marketplace.asgi.application"

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
                "core.context_processors.site",
            ],
        },
    },
]

# --- Data stores -----------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
    )
}
# PostgreSQL through psycopg's connection pool (Django 5.1+). Under ASGI a
# connection per request (CONN_MAX_AGE=0) cost a TCP+auth handshake each time
# and, at load, left dozens of idle server connections (bench/bench_nearby.py).
# The pool keeps a few open per process; size it to the worker threads: the
# socket consumers' database threads (SOCKET_DB_THREADS, messaging/consumers.py)
# plus Django's one thread for sync views, plus headroom.
SOCKET_DB_THREADS = env_int("SOCKET_DB_THREADS", 4, minimum=1)
# Besides that pool, a chat socket's text message is saved by one statement sent
# from the event loop itself (core/async_db.py): this many async connections per
# server process, outside DATABASE_POOL_MAX.
SOCKET_DB_ASYNC_CONNECTIONS = env_int("SOCKET_DB_ASYNC_CONNECTIONS", 4, minimum=1)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_POOL", True):
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool owns connection reuse
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN", 2, minimum=0),
        "max_size": env_int("DATABASE_POOL_MAX", max(10, SOCKET_DB_THREADS + 4), minimum=1),
        "timeout": 10,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Without REDIS_URL the site runs on one machine with nothing else: in-memory
# channel layer, local-memory cache, Celery tasks run in the calling process.
REDIS_URL = env_str("REDIS_URL")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "bt"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            # Pub/Sub layer: measured here at p99 54 ms with 6,000 sockets,
            # against 930 ms and 3% undelivered for RedisChannelLayer. Ours is
            # channels-redis's RedisPubSubChannelLayer with its publishes
            # pipelined (one Redis round trip per batch, not per message):
            # core/channel_layer.py.
            "BACKEND": "core.channel_layer.PipelinedPubSubChannelLayer",
            "CONFIG": {
                # The Redis client pool, sized explicitly (redis-py's default is
                # 100, and a full pool fails the call at once with "Too many
                # connections": at a socket upgrade that is an HTTP 500, e.g. in
                # the reconnect storm after a deploy). channels_redis 4.3's
                # Pub/Sub layer holds one subscriber connection per event loop
                # and sends publish/subscribe one at a time behind a lock, so a
                # process needs ~2; the headroom covers a burst of group_sends
                # from request threads. bench/bench_chat.py: 56 Redis clients at
                # peak for the whole server (layer, socket registry, cache) with
                # 5,000 sockets and 500 reconnecting at once.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": env_int("CHANNEL_LAYER_MAX_CONNECTIONS", 500, minimum=4),
                    }
                ],
                "prefix": env_str("CHANNEL_LAYER_PREFIX", "bt"),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery ----------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Deadlines live in the database and are swept by beat; countdowns never
# exceed this, or Redis redelivers the task again and again.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Approval reminders (24 h, 48 h) and auto-approval (72 h) after proof of
    # work; the deadlines are columns on the task, so a missed run catches up.
    "tasks.sweep_deadlines": {"task": "tasks.sweep_deadlines", "schedule": 60.0, "options": {"expires": 55}},
    # One email per conversation for messages unread after MESSAGE_DIGEST_DELAY.
    "messaging.send_message_digests": {
        "task": "messaging.send_message_digests",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # "Your job starts within the hour" to both sides (in-app, email/SMS by preference).
    "messaging.notify_jobs_starting": {
        "task": "messaging.notify_jobs_starting",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # ID document and selfie files deleted once their retention has passed.
    "accounts.purge_id_documents": {
        "task": "accounts.purge_id_documents",
        "schedule": 3600.0,
        "options": {"expires": 3500},
    },
    # The matching model, retrained on the day's outcomes (03:30 market time).
    "matching.train_nightly": {
        "task": "matching.train_nightly",
        "schedule": crontab(hour=3, minute=30),
        "options": {"expires": 3600},
    },
}

# --- Auth ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "accounts:dashboard"

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[BittieTasks] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if not DEBUG else "http"
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.SignupExtraForm"
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
# allauth's rate limits are on by default; these are stated so they are seen.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
}

# --- Email -----------------------------------------------------------------
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "BittieTasks <no-reply@bittietasks.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
SENDGRID_API_KEY = env_str("SENDGRID_API_KEY")
SENDGRID_HOST = env_str("SENDGRID_HOST", "https://api.sendgrid.com")
if SENDGRID_API_KEY:
    EMAIL_BACKEND = "core.email.SendGridEmailBackend"
else:
    EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

# --- Notifications ---------------------------------------------------------
# Seconds a message waits unread before the digest emails it.
MESSAGE_DIGEST_DELAY = env_int("MESSAGE_DIGEST_DELAY", 300, minimum=0)
# SMS through Twilio when its keys are set; otherwise printed (console).
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN")
TWILIO_FROM = env_str("TWILIO_FROM")
TWILIO_API_HOST = env_str("TWILIO_API_HOST")
if any([TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM]) and not all(
    [TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM]
):
    raise ImproperlyConfigured("Set all of TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM, or none")
SMS_BACKEND = "messaging.sms.TwilioSMS" if TWILIO_ACCOUNT_SID else "messaging.sms.ConsoleSMS"

# --- Payments gateway (Stripe) ----------------------------------------------
# With STRIPE_SECRET_KEY the official Stripe client is used (payments.gateway);
# without it the simulated gateway (see PAYMENTS_GATEWAY) and its test cards.
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY")
# Webhook signing secrets (whsec_...), comma-separated: during a rotation the
# new and the old one are both accepted.
STRIPE_WEBHOOK_SECRETS = env_list("STRIPE_WEBHOOK_SECRETS")
# Stripe API base address (change only for a test fake).
STRIPE_API_BASE = env_str("STRIPE_API_BASE")
if STRIPE_SECRET_KEY and not STRIPE_WEBHOOK_SECRETS:
    raise ImproperlyConfigured("STRIPE_SECRET_KEY needs STRIPE_WEBHOOK_SECRETS: payments are confirmed by webhooks")
# Webhook events are processed in Celery (payments/tasks_webhooks.py, imported
# here since autodiscovery only finds tasks.py); events that failed or arrived
# before the one they depend on are retried by beat with backoff.
CELERY_IMPORTS = ("payments.tasks_webhooks",)
CELERY_BEAT_SCHEDULE["payments.retry_webhook_events"] = {
    "task": "payments.retry_webhook_events",
    "schedule": 60.0,
    "options": {"expires": 55},
}

# --- Payments: fees, holds, cancellation (payments/fees.py has the rounding rule) ---
# Service fee paid by the customer on top of the price, in basis points (500 = 5 %), at least the minimum.
PAYMENTS_SERVICE_FEE_BPS = env_int("PAYMENTS_SERVICE_FEE_BPS", 500, minimum=0)
PAYMENTS_SERVICE_FEE_MIN_CENTS = env_int("PAYMENTS_SERVICE_FEE_MIN_CENTS", 199, minimum=0)
# Commission kept from the price (1000 = 10 %).
PAYMENTS_COMMISSION_BPS = env_int("PAYMENTS_COMMISSION_BPS", 1000, minimum=0)
if PAYMENTS_COMMISSION_BPS > 10_000:
    raise ImproperlyConfigured("PAYMENTS_COMMISSION_BPS must be at most 10000 (100 %)")


def _payments_category_rates(raw: str) -> dict[str, dict[str, int]]:
    """{"slug": {"commission_bps": int, "service_fee_bps": int}} from JSON; refuses anything else."""
    import json

    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"PAYMENTS_CATEGORY_RATES must be JSON, not {raw!r}") from exc
    if not isinstance(value, dict):
        raise ImproperlyConfigured("PAYMENTS_CATEGORY_RATES must be a JSON object keyed by category slug")
    for slug, rates in value.items():
        if not isinstance(rates, dict) or not rates or set(rates) - {"commission_bps", "service_fee_bps"}:
            raise ImproperlyConfigured(
                f"PAYMENTS_CATEGORY_RATES[{slug!r}] must have only commission_bps and/or service_fee_bps"
            )
        for key, bps in rates.items():
            if isinstance(bps, bool) or not isinstance(bps, int) or not 0 <= bps <= 10_000:
                raise ImproperlyConfigured(f"PAYMENTS_CATEGORY_RATES[{slug!r}][{key!r}] must be 0..10000, not {bps!r}")
    return value


PAYMENTS_CATEGORY_RATES = _payments_category_rates(env_str("PAYMENTS_CATEGORY_RATES"))
# Hours between approval and the transfer to the contractor (the customer's window to dispute).
PAYMENTS_PAYOUT_HOLD_HOURS = env_int("PAYMENTS_PAYOUT_HOLD_HOURS", 72, minimum=0)
# Minutes a checkout stays open before the escrow expires and the offer is acceptable again.
PAYMENTS_CHECKOUT_TIMEOUT_MINUTES = env_int("PAYMENTS_CHECKOUT_TIMEOUT_MINUTES", 15, minimum=1)
# Paid to the contractor when the customer cancels after check-in; the rest is refunded.
PAYMENTS_CALLOUT_FEE_CENTS = env_int("PAYMENTS_CALLOUT_FEE_CENTS", 4500, minimum=0)
# "stripe" or "simulated"; default: stripe when STRIPE_SECRET_KEY is set.
PAYMENTS_GATEWAY = env_str("PAYMENTS_GATEWAY", "stripe" if STRIPE_SECRET_KEY else "simulated")
if PAYMENTS_GATEWAY not in ("stripe", "simulated"):
    raise ImproperlyConfigured(f"PAYMENTS_GATEWAY must be stripe or simulated, not {PAYMENTS_GATEWAY!r}")
# The simulated gateway keeps its objects in memory; for make run (seed_demo in
# one process, the site in another) they are kept in this file. Empty: memory only.
PAYMENTS_SIMULATED_STATE_FILE = env_str(
    "PAYMENTS_SIMULATED_STATE_FILE", str(BASE_DIR / "var" / "simulated-gateway.json") if DEMO_MODE else ""
)
# Payout transfers after the hold, refund retries, abandoned checkouts: swept every minute.
CELERY_BEAT_SCHEDULE["payments.sweep_payouts"] = {
    "task": "payments.sweep_payouts",
    "schedule": 60.0,
    "options": {"expires": 55},
}
CELERY_BEAT_SCHEDULE["payments.sweep_checkouts"] = {
    "task": "payments.sweep_checkouts",
    "schedule": 60.0,
    "options": {"expires": 55},
}

# --- Photo verification (tasks.verification, tasks.ai) -----------------------
# The AI check runs only with a key; without one, local checks only (the task
# page says so). Prices are per million tokens, in cents, for the cost estimate.
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4o") or "gpt-4o"
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")
OPENAI_TIMEOUT_SECONDS = env_int("OPENAI_TIMEOUT_SECONDS", 60, minimum=1)
OPENAI_MAX_RETRIES = env_int("OPENAI_MAX_RETRIES", 1, minimum=0)
OPENAI_PRICE_INPUT_CENTS_PER_MTOK = env_int("OPENAI_PRICE_INPUT_CENTS_PER_MTOK", 250, minimum=0)
OPENAI_PRICE_OUTPUT_CENTS_PER_MTOK = env_int("OPENAI_PRICE_OUTPUT_CENTS_PER_MTOK", 1000, minimum=0)
PHOTO_CHECK_AI_ATTEMPTS = env_int("PHOTO_CHECK_AI_ATTEMPTS", 3, minimum=1)
# Percent: the AI must be at least this sure to pass; at least FAIL sure that
# the photos don't match to fail them outright.
PHOTO_CHECK_PASS_CONFIDENCE = env_int("PHOTO_CHECK_PASS_CONFIDENCE", 80, minimum=0) / 100
PHOTO_CHECK_FAIL_CONFIDENCE = env_int("PHOTO_CHECK_FAIL_CONFIDENCE", 85, minimum=0) / 100
if PHOTO_CHECK_PASS_CONFIDENCE > 1 or PHOTO_CHECK_FAIL_CONFIDENCE > 1:
    raise ImproperlyConfigured("PHOTO_CHECK_PASS_CONFIDENCE and PHOTO_CHECK_FAIL_CONFIDENCE are percents (0-100)")
# EXIF position further than this from the task (a ZIP centroid when no
# street address was geocoded) sends the photos to review.
PHOTO_CHECK_MAX_DISTANCE_KM = env_int("PHOTO_CHECK_MAX_DISTANCE_KM", 5, minimum=1)

# --- Reputation (reputation/scoring.py has the trust score's weights) ---------
# Bayesian rating: the platform mean counts as this many reviews for everyone.
REPUTATION_PRIOR_WEIGHT = env_int("REPUTATION_PRIOR_WEIGHT", 5, minimum=0)
# Publish reviews whose 14-day window closed; recompute trust scores of people
# touched by task events or messages (hooks nobody else has to call).
CELERY_BEAT_SCHEDULE["reputation.publish_due_reviews"] = {
    "task": "reputation.publish_due_reviews",
    "schedule": 300.0,
    "options": {"expires": 290},
}
CELERY_BEAT_SCHEDULE["reputation.recompute_recent"] = {
    "task": "reputation.recompute_recent",
    "schedule": 600.0,
    "options": {"expires": 590},
}
# Disputes: no response in 48 hours or unsettled after 7 days -> mediation
# (deadlines are columns on the dispute; a missed run catches up).
CELERY_BEAT_SCHEDULE["reputation.sweep_disputes"] = {
    "task": "reputation.sweep_disputes",
    "schedule": 60.0,
    "options": {"expires": 55},
}

# --- API -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: DRF answers 401 (with WWW-Authenticate) only when the
        # first class has an authenticate header; Session first turns every
        # missing or bad credential into 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"token": "10/min"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "BittieTasks API",
    "DESCRIPTION": "Post jobs, find work nearby, offers, escrow, chat. Version 1.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Several models have a "status"; name each enum after its owner.
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "tasks.models.Task.Status",
        "OfferStatusEnum": "tasks.models.Offer.Status",
        "ProofDecisionEnum": "tasks.models.ProofSubmission.Decision",
    },
}

# --- I18n, time ------------------------------------------------------------
LANGUAGE_CODE = "en-us"
LANGUAGES = [("en", _("English"))]
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "America/Los_Angeles")
USE_I18N = True
USE_TZ = True

# --- Files -----------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
# Media is never served from a public URL: views check who may see a file.
MEDIA_URL = "/files/"
MAX_PROFILE_PHOTO_BYTES = env_int("MAX_PROFILE_PHOTO_BYTES", 5 * 1024 * 1024, minimum=1024)
# ID documents and selfies: size cap, and days kept after staff decide (then deleted).
ID_DOCUMENT_MAX_BYTES = env_int("ID_DOCUMENT_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
ID_DOCUMENT_RETENTION_DAYS = env_int("ID_DOCUMENT_RETENTION_DAYS", 30, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- Security --------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Health probes come from the load balancer over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
