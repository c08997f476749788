"""Settings, read from the environment only (see .env.example for every variable)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-" + "x" * 20

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",  # index expressions with an operator class (the book's symbol search)
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "backoffice",
    "backoffice.audit",
    "positions",
    "instructions",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "backoffice.middleware.RejectNulBytesMiddleware",
    # Serves hashed, compressed static files in production; `runserver` serves them in DEBUG.
    *([] if DEBUG else ["whitenoise.middleware.WhiteNoiseMiddleware"]),
    "backoffice.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "backoffice.middleware.LoginRequiredMiddleware",
    "backoffice.middleware.MarketTimeZoneMiddleware",
    # Last, so that it sees the failed logins the views above produced.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "backoffice.urls"
WSGI_APPLICATION = "backoffice.wsgi.application"

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
                "backoffice.roles.context_processor",
                "backoffice.screens.navigation.nav_counts",
            ],
        },
    },
]

# --- Data services: required in production, embedded in development -----------------------------
# With DEBUG on, an unset URL means "start our own under ./var/" (PostgreSQL, never SQLite: the audit
# relies on PostgreSQL triggers and the workflows on row locks). With DEBUG off it is an error at start:
# an empty embedded database would look like a working one. The embedded servers' packages are
# development dependencies, imported only here and only in DEBUG.


def service_url(name: str, start_embedded: Callable[[], str]) -> str:
    url = os.environ.get(name, "")
    if url:
        return url
    if not DEBUG:
        raise ImproperlyConfigured(
            f"{name} must be set when DEBUG is off (the embedded server is for development only)."
        )
    return start_embedded()


def embedded(server: str, *args: str) -> Callable[[], str]:
    """Starts (or finds) one of the embedded servers and answers its URL; imported only when called."""

    def start() -> str:
        from backoffice import embedded as servers

        return str(getattr(servers, server)(*args))

    return start


# Two roles (README "Database roles"): every process connects as the application role, which owns
# nothing and may only INSERT and SELECT on the audit; `migrate` runs with DATABASE_URL set to the
# owner's URL and grants the application role (named here) what it may do (backoffice.dbroles).
DATABASE_APP_ROLE = os.environ.get("DATABASE_APP_ROLE") or "backoffice_app"
DATABASE_URL = service_url("DATABASE_URL", embedded("postgres_url", DATABASE_APP_ROLE))
# The owner's URL, only for tools that need both roles in one run: `make run` and `make migrate`
# migrate as it, the test run creates its database as it. Never give it to web, workers or beat.
DATABASE_OWNER_URL = os.environ.get("DATABASE_OWNER_URL") or (
    "" if os.environ.get("DATABASE_URL") or not DEBUG else embedded("owner_url")()
)
# --- end of the data services' deployment section ---
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME", "test_backoffice")}
# The audit trail writes through a connection of its own, so its rows commit even when the business
# transaction that caused them rolls back (see backoffice/audit).
DATABASES["audit"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}

# Beyond one machine: a PostgreSQL read replica (streaming replication of the primary) serves the
# pages' lag-tolerant reads through backoffice.dbrouter; writes, transactions, four-eyes decisions,
# locks and the audit chain's head stay on the primary. Unset: one database, no router at all.
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
DATABASE_REPLICA_ALIAS = "replica" if DATABASE_REPLICA_URL else ""
# After a form (any non-GET request), that browser's pages read the primary this long: longer than
# the replica's usual lag, so a page shows what the person just did.
DATABASE_REPLICA_PIN_SECONDS = env_int("DATABASE_REPLICA_PIN_SECONDS", 10)
# A replica further behind than this is reported unready by /readyz (and red on /healthz).
DATABASE_REPLICA_MAX_LAG_SECONDS = env_int("DATABASE_REPLICA_MAX_LAG_SECONDS", 30)
if DATABASE_REPLICA_URL:
    DATABASES[DATABASE_REPLICA_ALIAS] = {
        **dj_database_url.parse(DATABASE_REPLICA_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60)),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"connect_timeout": 5},
        # A test run reads its own database through the alias (a real second connection).
        "TEST": {"MIRROR": "default"},
    }
    DATABASE_ROUTERS = ["backoffice.dbrouter.PrimaryReplicaRouter"]
    MIDDLEWARE.insert(
        MIDDLEWARE.index("axes.middleware.AxesMiddleware"), "backoffice.dbrouter.ReplicaReadsMiddleware"
    )

REDIS_URL = service_url("REDIS_URL", embedded("redis_url"))


def kombu_url(redis_url: str) -> str:
    """Kombu spells a unix-socket Redis ``redis+socket://``; redis-py spells it ``unix://``."""
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        return f"redis+socket://{parts.path}" + (f"?virtual_host={_db(parts.query)}" if parts.query else "")
    return redis_url


def _db(query: str) -> str:
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == "db":
            return value
    return "0"


DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth, roles, login throttling -------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("LOGIN_COOLOFF_MINUTES", 15) / 60  # hours
# What a lockout is keyed on, and the per-address limit: see "Identity and access" below.
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)  # one trading day
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- Security (all on when DEBUG is off; `manage.py check --deploy` is clean) ------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env_bool("BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The health endpoints are probed over plain HTTP from inside the host or cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$", r"^readyz$"]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)

# --- Locale and time: store UTC, show market times in New York --------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
MARKET_TIME_ZONE = "America/New_York"

# --- Static files ------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "var" / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Celery --------------------------------------------------------------------------------------
CELERY_BROKER_URL = kombu_url(REDIS_URL)
CELERY_RESULT_BACKEND = kombu_url(REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_RESULT_EXPIRES = 3600
# Tasks are idempotent: acknowledge after they finish, so a killed worker's task runs again.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 540)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600)
# Longer than the longest task, so Redis never redelivers a task that is still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = CELERY_BROKER_TRANSPORT_OPTIONS
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
# One queue per deployment; a test run uses its own so it never shares work with a running stack.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "backoffice")
# Desk work, syncs and maintenance each on queues of their own (backoffice.queues).
CELERY_TASK_ROUTES = ("backoffice.queues.route",)
CELERY_BEAT_SCHEDULER = "backoffice.celery:SingleBeatScheduler"
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / "var" / "celerybeat-schedule")
POSITIONS_SYNC_INTERVAL_SECONDS = env_int("POSITIONS_SYNC_INTERVAL_SECONDS", 300)
# The book is called stale on the page once its snapshot is older than this.
POSITIONS_STALE_AFTER_SECONDS = env_int("POSITIONS_STALE_AFTER_SECONDS", 2 * POSITIONS_SYNC_INTERVAL_SECONDS)
CELERY_BEAT_SCHEDULE: dict = {
    # Work whose decision committed while the broker was unreachable (see backoffice.jobs).
    "backoffice-dispatch-jobs": {"task": "backoffice.dispatch_jobs", "schedule": 15.0},
    # Nightly proof that the audit trail was not altered (01:15 ET in winter, 02:15 in summer).
    "audit-verify-chain-nightly": {"task": "audit.verify_chain", "schedule": crontab(hour=6, minute=15)},
    "instructions-poll-live": {"task": "instructions.poll_live_instructions", "schedule": 15.0},
    "instructions-poll-all": {"task": "instructions.poll_all_instructions", "schedule": 600.0},
    "instructions-expire-batches": {"task": "instructions.expire_batches", "schedule": 60.0},
    "instructions-resume-unfinished-work": {"task": "instructions.resume_unfinished_work", "schedule": 30.0},
    "positions-resume-unfinished-closes": {"task": "positions.resume_unfinished_closes", "schedule": 30.0},
    # Calls left "sent, no answer recorded" by a process that died, once no call can still be waiting.
    "audit-resolve-interrupted-calls": {"task": "audit.resolve_interrupted_calls", "schedule": 60.0},
    "sync-active-accounts": {
        "task": "positions.sync_active_accounts",
        "schedule": float(POSITIONS_SYNC_INTERVAL_SECONDS),
    },
}

# --- Clear Street --------------------------------------------------------------------------------
SANDBOX_PORT = env_int("SANDBOX_PORT", 8765)
SANDBOX_DEFAULT_API_KEY = "sandbox-demo-key"
CLEAR_STREET_BASE_URL = os.environ.get("CLEAR_STREET_BASE_URL", "")
CLEAR_STREET_API_KEY = os.environ.get("CLEAR_STREET_API_KEY", "")
if not CLEAR_STREET_BASE_URL:
    if not DEBUG and not env_bool("ALLOW_SANDBOX_UPSTREAM", False):
        raise ImproperlyConfigured("CLEAR_STREET_BASE_URL must be set when DEBUG is off.")
    CLEAR_STREET_BASE_URL = f"http://127.0.0.1:{SANDBOX_PORT}"
if not CLEAR_STREET_API_KEY and urlsplit(CLEAR_STREET_BASE_URL).hostname in {"127.0.0.1", "localhost"}:
    CLEAR_STREET_API_KEY = SANDBOX_DEFAULT_API_KEY
CLEAR_STREET_TIMEOUT_SECONDS = float(os.environ.get("CLEAR_STREET_TIMEOUT_SECONDS", "10"))
# Submitting a batch: attempts while Clear Street is unavailable, and the firm's own cutoff (ET).
INSTRUCTION_SUBMIT_RETRIES = env_int("INSTRUCTION_SUBMIT_RETRIES", 5)
# Approved work still waiting this long for its task is handed on again by the sweeper (its job may
# have been lost with the broker); each request's lock keeps duplicates harmless.
RESUME_AFTER_SECONDS = env_int("RESUME_AFTER_SECONDS", 60)
INSTRUCTION_SUBMIT_MAX_BACKOFF_SECONDS = env_int("INSTRUCTION_SUBMIT_MAX_BACKOFF_SECONDS", 60)
FIRM_INSTRUCTION_CUTOFF = os.environ.get("FIRM_INSTRUCTION_CUTOFF", "16:30")
# Contrary instructions (against exercise by exception) may go until the CEA deadline (17:30 ET, or
# 90 minutes after an early close) unless the firm sets an earlier cutoff for them here.
FIRM_CONTRARY_CUTOFF = os.environ.get("FIRM_CONTRARY_CUTOFF", "")
# The worksheet flags options whose strike is within this many dollars of the underlying (pin risk).
PIN_RISK_BAND = os.environ.get("PIN_RISK_BAND", "0.25")
# Batches not yet approved warn their maker and the checkers this many minutes before their cutoff.
EXPIRY_WARNING_MINUTES = env_int("EXPIRY_WARNING_MINUTES", 30)
# Where the business date and time come from: "system" (the wall clock in New York, for the real
# API) or "sandbox" (follow the sandbox's operator-controlled clock, for rehearsals).
UPSTREAM_IS_LOCAL_SANDBOX = urlsplit(CLEAR_STREET_BASE_URL).hostname in {"127.0.0.1", "localhost"}
MARKET_CLOCK = os.environ.get("MARKET_CLOCK") or ("sandbox" if UPSTREAM_IS_LOCAL_SANDBOX else "system")
if MARKET_CLOCK not in {"system", "sandbox"}:
    raise ImproperlyConfigured("MARKET_CLOCK must be 'system' or 'sandbox'.")


# --- Audit anchor: checkpoints of the chain's head outside the database (backoffice.audit.anchor) ---
def audit_anchor_keys() -> list[str]:
    """HMAC keys, newest first (the first signs, each verifies): AUDIT_ANCHOR_KEY, comma-separated, or
    AUDIT_ANCHOR_KEY_FILE, one a line. DEBUG alone may fall back to a key of its own under var/."""
    raw, path = os.environ.get("AUDIT_ANCHOR_KEY", ""), os.environ.get("AUDIT_ANCHOR_KEY_FILE", "")
    if raw and path:
        raise ImproperlyConfigured("Set AUDIT_ANCHOR_KEY or AUDIT_ANCHOR_KEY_FILE, not both.")
    if path:
        try:
            raw = Path(path).read_text().replace("\n", ",")
        except OSError as exc:
            raise ImproperlyConfigured(f"AUDIT_ANCHOR_KEY_FILE {path}: {exc.strerror}") from exc
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    if not keys:
        if not DEBUG:
            raise ImproperlyConfigured(
                "AUDIT_ANCHOR_KEY or AUDIT_ANCHOR_KEY_FILE must be set when DEBUG is off: without it the "
                "audit chain has no anchor outside the database."
            )
        development = BASE_DIR / "var" / "audit-anchor.key"
        if not development.exists():
            import secrets

            development.parent.mkdir(parents=True, exist_ok=True)
            development.write_text(secrets.token_hex(32) + "\n")
            development.chmod(0o600)
        keys = [development.read_text().strip()]
    if any(len(key) < 32 for key in keys):
        raise ImproperlyConfigured("Each audit anchor key must be at least 32 characters.")
    return keys


AUDIT_ANCHOR_KEYS = audit_anchor_keys()
if not DEBUG and not os.environ.get("AUDIT_ANCHOR_DIR"):
    raise ImproperlyConfigured(
        "AUDIT_ANCHOR_DIR must be set when DEBUG is off: where the audit checkpoints are kept, outside "
        "the database (storage the database's administrators cannot rewrite)."
    )
AUDIT_ANCHOR_DIR = Path(os.environ.get("AUDIT_ANCHOR_DIR") or BASE_DIR / "var" / "audit-anchors")
# How often beat checkpoints the chain's head: rows newer than the last checkpoint are what someone
# holding the database could still delete unseen.
AUDIT_ANCHOR_INTERVAL_SECONDS = env_int("AUDIT_ANCHOR_INTERVAL_SECONDS", 60)
CELERY_BEAT_SCHEDULE["audit-checkpoint-chain"] = {
    "task": "audit.checkpoint_chain",
    "schedule": float(AUDIT_ANCHOR_INTERVAL_SECONDS),
}

# Crash rehearsal (backoffice.failpoints) is for test workers only.
if not DEBUG and os.environ.get("BACKOFFICE_FAILPOINTS"):
    raise ImproperlyConfigured("BACKOFFICE_FAILPOINTS is for rehearsing crashes in tests; unset it.")

# A token that lets a monitor read /healthz without a session (empty: login required).
HEALTHZ_TOKEN = os.environ.get("HEALTHZ_TOKEN", "")

# --- REST framework (the API under /api/, see api/) ------------------------------------------------
REST_FRAMEWORK = {
    # Token first: its 401 carries WWW-Authenticate. A browser session works too (with CSRF).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "api.throttling.TokenRateThrottle",
        "api.throttling.AnonymousRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("API_RATE_PER_TOKEN", "600/minute"),
        "anon": os.environ.get("API_RATE_ANONYMOUS", "30/minute"),
    },
}
# A batch holds at most this many rows; a request body at most this many bytes (Django answers 413
# through the API's error shape past it).
API_MAX_BATCH_ROWS = env_int("API_MAX_BATCH_ROWS", 500)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024)
# The batch form posts five fields a row: a form as large as the API allows must get through.
DATA_UPLOAD_MAX_NUMBER_FIELDS = API_MAX_BATCH_ROWS * 6 + 100
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Rate-limit counters, shared by every web worker; a run of its own (the tests') gets its own keys.
    "api_throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"api-throttle-{CELERY_TASK_DEFAULT_QUEUE}",
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Clear Street back-office API",
    "DESCRIPTION": (
        "Everything a person can do in the back-office pages, under the same rules: the book, syncs, "
        "instruction batches under maker-checker, cancels, closes, and (for compliance) the audit trail. "
        "Authenticate with `Authorization: Bearer <token>` or a signed-in session (with CSRF)."
    ),
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "SyncRunStatusEnum": "positions.models.SyncRun.Status",
        "CloseRequestStatusEnum": "positions.models.CloseRequest.Status",
        "BatchStatusEnum": "instructions.models.Batch.Status",
        "CancelRequestStatusEnum": "instructions.models.CancelRequest.Status",
        "InstructionStatusEnum": "instructions.models.InstructionStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_error_responses",
    ],
}

# --- Identity and access: desks, second factor, single sign-on, passwords, sessions, throttling ---
# (issue 14; README "Access" says what each does)
INSTALLED_APPS += [
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "access",
    "notifications",
]
# After sessions, auth and messages: django-otp marks verified sessions; an idle session ends before
# anything else looks at it; a person who needs a second factor gets only the verify page until then.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.messages.middleware.MessageMiddleware") + 1,
    "django_otp.middleware.OTPMiddleware",
)
MIDDLEWARE.insert(
    MIDDLEWARE.index("django_otp.middleware.OTPMiddleware") + 1, "backoffice.middleware.IdleTimeoutMiddleware"
)
MIDDLEWARE.insert(
    MIDDLEWARE.index("backoffice.middleware.IdleTimeoutMiddleware") + 1,
    "backoffice.middleware.SecondFactorMiddleware",
)
# Opening the book or the worksheet with no query shows the person's default saved view.
MIDDLEWARE.insert(
    MIDDLEWARE.index("backoffice.middleware.SecondFactorMiddleware") + 1,
    "backoffice.savedviews.middleware.DefaultViewMiddleware",
)
TEMPLATES[0]["OPTIONS"]["context_processors"].append("access.context.identity")  # type: ignore[index]

# Second factor (TOTP with recovery codes): who must have one, and how fresh it must be to approve,
# reject or administer users (step-up).
MFA_ENFORCED = env_bool("MFA_ENFORCED", True)
MFA_REQUIRED_ROLES = env_list("MFA_REQUIRED_ROLES", ["supervisors", "admins"])
MFA_REQUIRED_FOR_EVERYONE = env_bool("MFA_REQUIRED_FOR_EVERYONE", False)
MFA_RECOVERY_CODES = env_int("MFA_RECOVERY_CODES", 10)
OTP_TOTP_ISSUER = os.environ.get("MFA_ISSUER", "Clear Street back-office")
STEP_UP_WINDOW_SECONDS = env_int("STEP_UP_WINDOW_SECONDS", 300)

# Sessions end after this long without a request (and on a password change).
SESSION_IDLE_TIMEOUT_SECONDS = env_int("SESSION_IDLE_TIMEOUT_SECONDS", 30 * 60)

# A maker and a checker role on one desk in one person is refused unless the firm allows it.
ALLOW_MAKER_AND_CHECKER_ON_ONE_DESK = env_bool("ALLOW_MAKER_AND_CHECKER_ON_ONE_DESK", False)

# API tokens expire after this many days unless their creator picks an earlier date.
API_TOKEN_DEFAULT_DAYS = env_int("API_TOKEN_DEFAULT_DAYS", 90)

# Client addresses: X-Forwarded-For is believed only as far as this many proxies of ours set it.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "backoffice.addresses.client_address"
REST_FRAMEWORK["NUM_PROXIES"] = TRUSTED_PROXY_COUNT  # type: ignore[assignment]
# A lockout is a username from one address: an anonymous client can no longer lock the desk out from
# elsewhere. Failed sign-ins per address are limited across usernames (access.throttling), and
# requests with a wrong API token per address (api.authentication).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 30)
LOGIN_ADDRESS_WINDOW_SECONDS = env_int("LOGIN_ADDRESS_WINDOW_SECONDS", 15 * 60)
API_INVALID_TOKEN_RATE = os.environ.get("API_INVALID_TOKEN_RATE", "20/minute")

# Password reset by e-mail (Django's e-mail backend; SMTP unless told otherwise).
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "backoffice@localhost")
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 24 * 3600)
# The site's address as people reach it, for links in e-mails sent outside a request.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000")

# Notifications (the bell, e-mail, an optional chat webhook): a repeat of the same kind about the same
# object within this many seconds, while unread, adds to the earlier message's count.
NOTIFICATIONS_FOLD_SECONDS = env_int("NOTIFICATIONS_FOLD_SECONDS", 3600)
# A Slack-compatible incoming webhook ({"text": ...}); empty: no webhook.
NOTIFICATIONS_WEBHOOK_URL = os.environ.get("NOTIFICATIONS_WEBHOOK_URL", "")
NOTIFICATIONS_WEBHOOK_TIMEOUT_SECONDS = env_int("NOTIFICATIONS_WEBHOOK_TIMEOUT_SECONDS", 5)
# This many failed syncs in a row of one account tell its desk.
NOTIFICATIONS_SYNC_FAILURES = env_int("NOTIFICATIONS_SYNC_FAILURES", 3)
TEMPLATES[0]["OPTIONS"]["context_processors"].append("notifications.context.bell")  # type: ignore[index]
CELERY_BEAT_SCHEDULE["notifications-watch"] = {"task": "notifications.watch", "schedule": 60.0}

# Single sign-on (OpenID Connect, mozilla-django-oidc). On when a client id is set; local accounts stay
# for break-glass use. Roles and desks come from the provider's claims through the two maps.
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = os.environ.get("OIDC_RP_SCOPES", "openid email profile")
# Match the token's key id against the provider's keys (0 only for a provider publishing one key
# without ids); never wait on the provider for ever.
OIDC_VERIFY_KID = env_bool("OIDC_VERIFY_KID", True)
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT", 10)
OIDC_ROLE_CLAIM = os.environ.get("OIDC_ROLE_CLAIM", "groups")
OIDC_DESK_CLAIM = os.environ.get("OIDC_DESK_CLAIM", "desks")
# JSON objects: the provider's value -> our role name, and -> our desk name.
OIDC_ROLE_MAP: dict[str, str] = json.loads(os.environ.get("OIDC_ROLE_MAP", "{}"))
OIDC_DESK_MAP: dict[str, str] = json.loads(os.environ.get("OIDC_DESK_MAP", "{}"))
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
LOGIN_REDIRECT_URL_FAILURE = "/login/"
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("access.sso.ClaimsMappingBackend")

# --- Telemetry: structured logs, /metrics, one beat (README "Telemetry") ---------------------------
# Logs: every record to stdout through one structlog formatter, carrying the request id, the user and
# the Celery task id; JSON unless asked otherwise (console lines by default in development).
from backoffice.telemetry.logs import logging_config  # noqa: E402  (kept inside its section)

LOG_FORMAT = os.environ.get("LOG_FORMAT") or ("console" if DEBUG else "json")
try:
    LOGGING = logging_config(log_format=LOG_FORMAT, level=os.environ.get("LOG_LEVEL", "INFO"))
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
LOGGING_CONFIG = "backoffice.telemetry.logs.configure"
# Outermost: it times everything below it, and every line of the request carries its id.
MIDDLEWARE.insert(0, "backoffice.telemetry.middleware.RequestTelemetryMiddleware")

# /metrics answers only "Authorization: Bearer $METRICS_TOKEN" (unset: 404). Several gunicorn workers
# share their HTTP histograms through PROMETHEUS_MULTIPROC_DIR (read by prometheus_client itself).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
SECURE_REDIRECT_EXEMPT += [r"^metrics$"]

# One beat sends the schedule: the holder of this lease in Redis (backoffice.beatlock); every other
# beat process stands by and takes over within the ttl when the holder dies.
BEAT_LOCK_KEY = f"backoffice:beat-lock:{CELERY_TASK_DEFAULT_QUEUE}"
BEAT_LOCK_TTL_SECONDS = env_int("BEAT_LOCK_TTL_SECONDS", 30)
if BEAT_LOCK_TTL_SECONDS < 2:
    raise ImproperlyConfigured("BEAT_LOCK_TTL_SECONDS must be at least 2.")
