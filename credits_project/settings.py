"""Settings for the credits service, read from the environment (and an optional `.env`).

With no `DATABASE_URL` the service runs on an embedded SQLite file in `DATA_DIR`, configured so
that several gunicorn workers can write at once (IMMEDIATE transactions, WAL, a busy timeout).
"""

import datetime as dt
import os
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
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)


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
    "axes",
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
    # Last, as django-axes requires: turns a locked-out admin login into the lockout page.
    "axes.middleware.AxesMiddleware",
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
EMBEDDED_DATABASE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if EMBEDDED_DATABASE:
    if env.str("DATABASE_REPLICA_URL", default=""):
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs DATABASE_URL to be PostgreSQL")
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # Writers queue on the database lock at BEGIN instead of failing mid-transaction
            # with "database is locked" when a read lock cannot be upgraded.
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_TIMEOUT_SECONDS", default=30),
            # FULL: a commit is on disk (the WAL synced) before it is acknowledged. NORMAL
            # would let a power loss undo the last acknowledged charges.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
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
            # A pool that cannot connect retries with a doubling delay (1, 2, 4, ... s) for this
            # long, then gives up until the next request that waits starts a new attempt: a
            # new primary is found within about half a second. psycopg's default (5 min) left
            # writes down 28 s after a failover that took 14 s (docs/scaling.md).
            "reconnect_timeout": env.float("DATABASE_POOL_RECONNECT_SECONDS", default=0.5),
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
    # Standbys for the reads that may lag behind the primary (credits_project/replicas.py), on
    # the same terms as the primary: its pool, its prepared statements. The URL may list
    # several standbys with `target_session_attrs=prefer-standby`.
    REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
    if REPLICA_URL:
        replica = env.db_url_config(REPLICA_URL)
        replica.setdefault("OPTIONS", {}).update(
            {
                k: v
                for k, v in options.items()
                if k in ("pool", "server_side_binding", "prepare_threshold")
            }
        )
        replica["CONN_MAX_AGE"] = database["CONN_MAX_AGE"]
        replica["CONN_HEALTH_CHECKS"] = database["CONN_HEALTH_CHECKS"]
        replica["TEST"] = {"MIRROR": "default"}
        DATABASES["replica"] = replica
        DATABASE_ROUTERS = ["credits_project.replicas.StandbyRouter"]
# How long a read on a standby waits for it to replay the primary's latest commits before it
# reads the primary instead.
DATABASE_REPLICA_WAIT_SECONDS = env.float("DATABASE_REPLICA_WAIT_SECONDS", default=0.1)


def _create_private(path: Path) -> None:
    """Creates `path` empty, readable by its owner alone, unless it exists.

    An empty file is a valid SQLite database, and SQLite gives the `-wal` and `-shm` files it
    creates beside a database the database file's permissions, so all three stay private.
    """
    if path.parent.is_dir():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


if EMBEDDED_DATABASE and DATABASES["default"]["NAME"] not in ("", ":memory:"):
    _create_private(Path(DATABASES["default"]["NAME"]))


def _local_secret_key(path: Path) -> str:
    """A secret made once per data folder, so a fresh checkout runs without configuration."""
    from django.utils.crypto import get_random_string

    try:
        # Created private from the start (never readable by others, even for a moment), and
        # by one process only: a second one starting at the same time reads the first's key.
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w") as file:
            file.write(get_random_string(64))
    return path.read_text().strip()


def _secret_key() -> str:
    """`SECRET_KEY`, or a key kept in `DATA_DIR` where only one host can run the service.

    The embedded SQLite database (as `make run` uses) and DEBUG mean one host. With a database
    server, several hosts may serve at once; each would make its own key and reject the others'
    cursors and sessions, so the key must be given.
    """
    key = env.str("SECRET_KEY", default="")
    if key:
        return key
    if DEBUG or EMBEDDED_DATABASE:
        return _local_secret_key(DATA_DIR / "secret_key")
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. With DATABASE_URL pointing to a database server and DEBUG off, "
        "every host serving the service must share one secret key: set SECRET_KEY in the "
        "environment (or .env) to the same random value of at least 50 characters everywhere, "
        "e.g. the output of `python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )


SECRET_KEY = _secret_key()
# Earlier keys, still accepted while sessions and cursors issued under them age out.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out admin login before any password is checked.
    "credits_project.login_throttle.AdminLoginThrottle",
    "django.contrib.auth.backends.ModelBackend",
]

# A login whose `next` is absent or unsafe (another host, a script) lands on the console, the
# service's only login (Django's default, /accounts/profile/, does not exist here).
LOGIN_REDIRECT_URL = "admin:index"

# Admin logins (django-axes): after ADMIN_LOGIN_FAILURE_LIMIT failures of one username from
# one address, that pair is locked out for ADMIN_LOGIN_LOCKOUT_MINUTES, or until
# `manage.py axes_reset_username NAME` (or `axes_reset`). The API's key authentication does
# not go through Django's login and is never locked out.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("ADMIN_LOGIN_LOCKOUT_MINUTES", default=60))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin_lockout.html"
AXES_CLIENT_IP_CALLABLE = "credits_project.login_throttle.client_address"
AXES_VERBOSE = False  # no banner at every start; failures and lockouts are still logged
# Proxies in front of gunicorn that append the client's address to X-Forwarded-For; 0 (no
# proxy) reads the peer address. Behind one proxy, 1.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

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
# Times in the admin read "2026-12-01 02:24:05 UTC" (credits_project/formats/en/formats.py).
FORMAT_MODULE_PATH = ["credits_project.formats"]

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
# Schedules one transaction of the scheduler grants: a thousand rows to a statement, as a
# bulk grant writes them; a client's write to one of their customers waits for at most one
# batch.
SCHEDULER_BATCH_SIZE = max(1, env.int("SCHEDULER_BATCH_SIZE", default=1000))
# Threads of one scheduler granting batches side by side, on PostgreSQL: two keep the
# database busy while Python builds the next batch (three gained nothing more on two cores).
SCHEDULER_GRANT_WORKERS = max(1, env.int("SCHEDULER_GRANT_WORKERS", default=2))

# Webhook delivery by `run_scheduler` (see ledger/webhooks/delivery.py): each request's timeout;
# how long past it a sender's lease lasts; the retry backoff (doubling from the base, capped)
# and how long retries go on before a delivery is failed; the thread pool of per-endpoint
# tasks, and how many deliveries one task sends before it makes way.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_LEASE_MARGIN_SECONDS = env.float("WEBHOOK_LEASE_MARGIN_SECONDS", default=30.0)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=5.0)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=3600.0)
WEBHOOK_RETRY_HOURS = env.float("WEBHOOK_RETRY_HOURS", default=24.0)
WEBHOOK_WORKERS = env.int("WEBHOOK_WORKERS", default=8)
WEBHOOK_DELIVERIES_PER_TASK = env.int("WEBHOOK_DELIVERIES_PER_TASK", default=100)
# Webhooks go only to public addresses: loopback, private, link-local, multicast, reserved and
# unspecified ones are refused, on every address a name resolves to, when the connection is
# made (ledger/webhooks/addresses.py). True lifts the rule, for development and tests.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=False)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["customers.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["credits_project.json.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["credits_project.json.ExactJSONRenderer"],
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
    # Requests and responses are separate classes already: no `…Request` twin of each shape.
    "COMPONENT_SPLIT_REQUEST": False,
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
    "filters": {"without_traceback": {"()": "credits_project.log_filters.WithoutTraceback"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "console_one_line": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["without_traceback"],
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        # A request naming a host not in ALLOWED_HOSTS is the client's mistake (or a scan):
        # one line naming the host, not a traceback of Django's own code.
        "django.security.DisallowedHost": {
            "handlers": ["console_one_line"],
            "propagate": False,
        },
    },
}

# HTTPS, for production behind a proxy that terminates TLS (see README, "Production"). Off by
# default so that `make run` works over plain HTTP on the loopback.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Load balancers probe over plain HTTP; a redirect would read as a failed probe.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# e.g. "HTTP_X_FORWARDED_PROTO,https": only behind a proxy that always sets (never forwards)
# that header.
SECURE_PROXY_SSL_HEADER = tuple(env.list("SECURE_PROXY_SSL_HEADER", default=[])) or None
if SECURE_PROXY_SSL_HEADER is not None and len(SECURE_PROXY_SSL_HEADER) != 2:
    raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be HEADER,VALUE")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"
