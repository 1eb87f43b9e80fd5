"""Settings for the credits service, read from the environment (and an optional `.env`).

With no `DATABASE_URL` the service runs on an embedded SQLite file in `DATA_DIR`, configured so
that several gunicorn workers can write at once (IMMEDIATE transactions, WAL, a busy timeout).
"""

import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

DATA_DIR = Path(env("DATA_DIR", default=str(BASE_DIR / "data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _local_secret_key(path: Path) -> str:
    """A secret made once per data folder, so a fresh checkout runs without configuration."""
    if not path.exists():
        from django.utils.crypto import get_random_string

        path.write_text(get_random_string(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env("SECRET_KEY", default=None) or _local_secret_key(DATA_DIR / "secret_key")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "customers",
    "ledger",
]

MIDDLEWARE = [
    "credits_project.middleware.ApiEnvelopeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "ledger.api.routes.RawTargetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "credits_project.urls"
WSGI_APPLICATION = "credits_project.wsgi.application"

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


def _gevent_patched() -> bool:
    """Whether gevent has patched the standard library (gunicorn's gevent worker does it before
    loading the application)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("socket")


SQLITE_URL = f"sqlite:///{DATA_DIR / 'credits.sqlite3'}"
DATABASES = {"default": env.db_url_config(env.str("DATABASE_URL", default="") or SQLITE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # Writers queue on the database lock at BEGIN instead of failing mid-transaction
            # with "database is locked" when a read lock cannot be upgraded.
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_TIMEOUT_SECONDS", default=30),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
else:
    database = DATABASES["default"]
    options = database.setdefault("OPTIONS", {})
    # Under gevent workers (gunicorn.conf.py) a process serves many requests at once, each on a
    # greenlet of its own with its own connection: a bounded pool per process keeps them few.
    # Elsewhere (sync workers, commands, tests) one persistent connection per thread.
    pool_size = env.int("DATABASE_POOL_SIZE", default=8 if _gevent_patched() else 0)
    if pool_size:
        database["CONN_MAX_AGE"] = 0
        options["pool"] = {
            "min_size": min(2, pool_size),
            "max_size": pool_size,
            # A request waits this long for a connection, then gets a retryable 503.
            "timeout": env.float("DATABASE_POOL_TIMEOUT_SECONDS", default=3.0),
        }
    else:
        database.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # No check (an empty query) before a connection is used: one that broke meanwhile (the
    # database restarted) fails its request with a retryable 503 and is dropped. A pool's check
    # would also wait between failed checks, a second or more per dead pooled connection.
    database.setdefault("CONN_HEALTH_CHECKS", env.bool("CONN_HEALTH_CHECKS", default=False))
    # `transaction` behind pgbouncer in transaction pooling mode (docs/scaling.md): its server
    # connections change from one transaction to the next, so nothing may be kept prepared on
    # them (pgbouncer before 1.21 does not carry prepared statements across).
    DATABASE_POOLER = env.str("DATABASE_POOLER", default="")
    if DATABASE_POOLER not in ("", "session", "transaction"):
        raise ImproperlyConfigured("DATABASE_POOLER must be empty, session or transaction")
    prepared = env.bool("DATABASE_PREPARED_STATEMENTS", default=DATABASE_POOLER != "transaction")
    if prepared and DATABASE_POOLER == "transaction":
        raise ImproperlyConfigured(
            "DATABASE_PREPARED_STATEMENTS cannot be on with DATABASE_POOLER=transaction"
        )
    if prepared:
        # Parameters bound by the server, and a statement run a few times on a connection kept
        # prepared there: the hot path's statements are then planned once per connection.
        options.update({"server_side_binding": True, "prepare_threshold": 2})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Hashed, compressed files once `collectstatic` has run (as `make run` does); before that (tests,
# development) plain names served from the apps.
STATIC_MANIFEST = STATIC_ROOT / "staticfiles.json"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST.exists() or env.bool("COLLECTING_STATIC", default=False)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Tests and `runserver` serve files straight from the apps; no collectstatic needed there.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=not STATIC_MANIFEST.exists())

# Request bodies above this size get 413 `request_too_large`.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES, 2_621_440)

# Per-API-key request rate, e.g. "100/s" or "6000/min"; unset means no limit.
API_RATE_LIMIT = env("API_RATE_LIMIT", default=None)

# How often `run_scheduler` runs a pass, in seconds.
SCHEDULER_INTERVAL_SECONDS = env.float("SCHEDULER_INTERVAL_SECONDS", default=10.0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["customers.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["credits_project.api.json.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["credits_project.api.json.ExactJSONRenderer"],
    "EXCEPTION_HANDLER": "credits_project.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["customers.throttling.ApiKeyRateThrottle"],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "credits API",
    "DESCRIPTION": (
        "A prepaid-credits ledger: deposit credits into wallets, charge them at once (deduct) "
        "or in stages (freeze, then consume or unfreeze), read balances and the ledger.\n\n"
        "**Always send an idempotency key.** Clients retry on network errors, 429 and 5xx; a "
        "deposit without `idempotency_key` (or an `Idempotency-Key` header) is not idempotent "
        "and a retry would deposit twice. Freeze, consume, unfreeze and deduct are idempotent "
        "by their `transaction_id`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PUBLIC": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {},
    "SCHEMA_PATH_PREFIX": r"/v1",
    "APPEND_COMPONENTS": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
    },
    "SECURITY": [{"bearerAuth": []}],
    "AUTHENTICATION_WHITELIST": [],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"
