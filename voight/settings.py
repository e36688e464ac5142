"""Voight settings, read from the environment.

With no variables set you get the embedded default: SQLite in WAL mode under `var/`, the
in-process channel layer, Celery tasks run inline, and the periodic work run by an in-process
scheduler. `DATABASE_URL` and `REDIS_URL` switch to PostgreSQL, channels_redis, a Redis cache
and Celery on Redis (production).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from voight.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VOIGHT_HOME", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
EMBEDDED_SECRET_KEY = "embedded-insecure-key-set-SECRET_KEY-in-production"
SECRET_KEY = env_str("SECRET_KEY") or EMBEDDED_SECRET_KEY
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")
EMBEDDED = not DATABASE_URL

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "voight",
    "sessions.apps.SessionsConfig",
    "traces",
    "ingest",
    "approvals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "voight.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "voight.urls"
WSGI_APPLICATION = "voight.wsgi.application"
ASGI_APPLICATION = "voight.asgi.application"

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

if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "voight.sqlite3",
            "OPTIONS": {
                # WAL lets the pages read while ingest writes; IMMEDIATE takes the write lock
                # at BEGIN so two writers queue instead of failing to upgrade a read lock.
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;"
                ),
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    # Live notices are fan-out only (nothing needs a per-channel queue), so the pub/sub
    # layer: one Redis PUBLISH per group message instead of one list push per connection.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL}]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
# Until `collectstatic` fills STATIC_ROOT the finders serve the files; WhiteNoise's warning
# about the missing folder says nothing useful then.
warnings.filterwarnings("ignore", message=r"No directory at: .*staticfiles")

# Ingest limits (SPEC 4.3).
VOIGHT_MAX_BODY_BYTES = env_int("VOIGHT_MAX_BODY_BYTES", 5 * 1024 * 1024)
VOIGHT_MAX_BATCH = env_int("VOIGHT_MAX_BATCH", 1000)
VOIGHT_MAX_EVENT_BYTES = env_int("VOIGHT_MAX_EVENT_BYTES", 1024 * 1024)
VOIGHT_MAX_FIELD_CHARS = env_int("VOIGHT_MAX_FIELD_CHARS", 64 * 1024)
VOIGHT_MAX_JSON_DEPTH = 64
# How a delivery reaches the pipeline (ingest/staging.py, ingest/folder.py). The request
# validates and stages it and answers; then "thread": a thread in each web process folds it a
# moment later; "process": likewise, but the web processes never fold — a separate folder
# (`manage.py fold`, Procfile) does, so no fold shares a web worker's interpreter lock with
# its requests; "request": the request runs the pipeline before answering — SQLite's single
# writer gains nothing from a second one, and tests read the result at once.
VOIGHT_FOLD = env_str("VOIGHT_FOLD", env_str("VOIGHT_HOOK_FOLD", "thread" if DATABASE_URL else "request"))
if VOIGHT_FOLD not in ("thread", "process", "request"):
    raise ImproperlyConfigured("VOIGHT_FOLD must be 'thread', 'process' or 'request'")
# Folds are sharded by session (ingest/staging.py): this many folds can run at once, across
# all processes, never two on one session. Changing it is safe at any time.
VOIGHT_FOLD_SHARDS = env_int("VOIGHT_FOLD_SHARDS", 8)
# How long staged rows may gather before a busy server folds them (ingest/folder.py): the
# longer, the cheaper each event's fold and the later its rollups.
VOIGHT_FOLD_GATHER_MS = env_int("VOIGHT_FOLD_GATHER_MS", 500)
# Backpressure: past this backlog of staged deliveries (rows, or age of the oldest in
# seconds) ingest answers 503 with Retry-After instead of staging more.
VOIGHT_BACKLOG_MAX_ROWS = env_int("VOIGHT_BACKLOG_MAX_ROWS", 500_000)
VOIGHT_BACKLOG_MAX_SECONDS = env_int("VOIGHT_BACKLOG_MAX_SECONDS", 60)
VOIGHT_BACKLOG_RETRY_AFTER = env_int("VOIGHT_BACKLOG_RETRY_AFTER", 5)
# Django refuses bodies over this before our own 413 can answer; keep it above ours.
DATA_UPLOAD_MAX_MEMORY_SIZE = VOIGHT_MAX_BODY_BYTES + 1024 * 1024
# A body a view answered without reading (a 413 from its Content-Length, a 401) is read and
# discarded up to this size and time before the answer goes out, so a client that sends its
# whole body before reading sees the answer, not a reset (voight/unread_body.py).
VOIGHT_DRAIN_MAX_BYTES = env_int("VOIGHT_DRAIN_MAX_BYTES", 64 * 1024 * 1024)
VOIGHT_DRAIN_SECONDS = env_int("VOIGHT_DRAIN_SECONDS", 10)

# Per-key rate limits (SPEC 11), requests per minute; a team's own setting wins, 0 = no limit.
VOIGHT_INGEST_RATE_PER_MINUTE = env_int("VOIGHT_INGEST_RATE_PER_MINUTE", 6000)
VOIGHT_READ_RATE_PER_MINUTE = env_int("VOIGHT_READ_RATE_PER_MINUTE", 600)

# Status windows (SPEC 5), in seconds.
VOIGHT_IDLE_AFTER = env_int("VOIGHT_IDLE_AFTER", 5 * 60)
VOIGHT_DONE_AFTER = env_int("VOIGHT_DONE_AFTER", 30 * 60)
VOIGHT_STALE_AFTER = env_int("VOIGHT_STALE_AFTER", 5 * 60)
VOIGHT_AUTOCLOSE_AFTER = env_int("VOIGHT_AUTOCLOSE_AFTER", 24 * 3600)
VOIGHT_STATUS_INTERVAL = env_int("VOIGHT_STATUS_INTERVAL", 30)
# The beat reads only sessions whose status deadline passed; every this many seconds (and on
# a process's first tick, and when the windows above change) it runs the rule over all of
# them, to catch what a write that bypassed the rule left behind (sessions.lifecycle).
VOIGHT_STATUS_SWEEP_INTERVAL = env_int("VOIGHT_STATUS_SWEEP_INTERVAL", 3600)
VOIGHT_ALERT_INTERVAL = env_int("VOIGHT_ALERT_INTERVAL", 60)
# Budget checks after ingest batches: at most one per team this often (seconds); a batch in
# between schedules one delayed check for the window's end (sessions.budget_checks).
VOIGHT_BUDGET_CHECK_SECONDS = env_int("VOIGHT_BUDGET_CHECK_SECONDS", 1)

# Celery. In the embedded default tasks run inline and the in-process scheduler plays beat.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
# A task whose worker died goes back on the Redis queue after this long (kombu's default is
# an hour). Longer than any task's time limit; the one that may run longer, retention, is
# idempotent, so a second copy is harmless.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("VOIGHT_CELERY_VISIBILITY_TIMEOUT", 600),
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# One queue name per deployment; tests that start a real worker use their own.
CELERY_TASK_DEFAULT_QUEUE = env_str("VOIGHT_CELERY_QUEUE", "celery")
# Alert webhooks: eager (embedded) delivery runs inside the request that fired the rule, so
# it gets a short timeout and few immediate retries; a worker retries with backoff.
VOIGHT_WEBHOOK_TIMEOUT = env_int("VOIGHT_WEBHOOK_TIMEOUT", 5 if REDIS_URL else 2)
VOIGHT_WEBHOOK_RETRIES = env_int("VOIGHT_WEBHOOK_RETRIES", 5 if REDIS_URL else 1)
CELERY_BEAT_SCHEDULE = {
    # Each entry expires before its next run so a backlog never piles up duplicate work.
    "recompute-statuses": {
        "task": "sessions.tasks.recompute_statuses",
        "schedule": float(VOIGHT_STATUS_INTERVAL),
        "options": {"expires": VOIGHT_STATUS_INTERVAL * 0.9},
    },
    "evaluate-alert-windows": {
        "task": "sessions.tasks.evaluate_alert_windows",
        "schedule": float(VOIGHT_ALERT_INTERVAL),
        "options": {"expires": VOIGHT_ALERT_INTERVAL * 0.9},
    },
    # Budgets are checked after every ingest batch; this catches a period's rollover (resuming
    # what a budget paused) and any check an ingest batch could not finish.
    "evaluate-budgets": {
        "task": "sessions.tasks.evaluate_budgets",
        "schedule": float(VOIGHT_ALERT_INTERVAL),
        "options": {"expires": VOIGHT_ALERT_INTERVAL * 0.9},
    },
    # Hooks a web process staged and did not fold before it stopped; running web processes
    # fold each other's leftovers within a second, this covers a fleet that took no hooks since.
    "fold-staged-hooks": {
        "task": "ingest.tasks.fold_staged",
        "schedule": 10.0,
        "options": {"expires": 9},
    },
    # Months ahead are created long before they start, so running a few times a day only
    # matters after downtime; a no-op on SQLite.
    "create-event-partitions": {
        "task": "traces.tasks.create_event_partitions",
        "schedule": 6 * 3600.0,
        "options": {"expires": 3600},
    },
    "prune-retention": {
        "task": "sessions.tasks.prune_retention",
        "schedule": 24 * 3600.0,
        "options": {"expires": 3600},
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "voight.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "voight.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Voight API",
    "DESCRIPTION": "Ingest and read API of Voight, observability for AI coding agents.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page works offline: Swagger UI and Redoc come from drf-spectacular-sidecar.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SessionStatusEnum": "sessions.models.Session.Status",
        "TraceStatusEnum": "traces.models.Trace.Status",
        "TraceKindEnum": "traces.models.Trace.Kind",
        "AgentKindEnum": "sessions.models.Agent.Kind",
        "AlertRuleKindEnum": "sessions.models.AlertRule.Kind",
        "DecisionKindEnum": "sessions.models.Decision.Kind",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}

if not DEBUG and not EMBEDDED:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    # VOIGHT_HTTPS=1: served over TLS by a proxy that sets X-Forwarded-Proto. Plain HTTP is
    # then redirected and browsers are told to stay on HTTPS for a year (what
    # `check --deploy` asks for). Off, the deploy check says so.
    if env_bool("VOIGHT_HTTPS", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
        SECURE_SSL_REDIRECT = True
        SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
        SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
        SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
        SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
        # Submitting the domain to the browsers' preload list is the domain owner's call,
        # not the application's: that one check is silenced, the setting stays available.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
