"""Django settings for chatweb, read from the environment.

Every variable is documented in README.md and `.env.example`. With nothing set the app
runs embedded: SQLite in `data/`, the in-memory channel layer, and the offline Responses
API simulator in place of a gateway. Production sets DATABASE_URL, REDIS_URL and
OPENAI_API_KEY.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from chatweb.env import (
    EnvError,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR") or BASE_DIR / "data")

# --- Core ------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", default=False)

DEVELOPMENT_SECRET_KEY = "chatweb-development-only-secret-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY") or DEVELOPMENT_SECRET_KEY
if not DEBUG and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise EnvError("SECRET_KEY", "must be set to a long random value when DEBUG is off")
if not DEBUG and SECRET_KEY.startswith("change-me"):  # the example value in .env.example
    raise EnvError("SECRET_KEY", "is still the example value from .env.example")
# Django's own bar (check --deploy's W009): 50+ characters, 5+ different ones.
if not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise EnvError(
        "SECRET_KEY",
        "is too weak: use at least 50 random characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')",
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
for origin in CSRF_TRUSTED_ORIGINS:
    if not origin.startswith(("http://", "https://")):
        raise EnvError("CSRF_TRUSTED_ORIGINS", f"{origin!r} must start with http:// or https://")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "conversations",
    "chatweb",
    "chatweb.sso",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "conversations.preferences.PreferredLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "chatweb.urls"
ASGI_APPLICATION = "chatweb.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------


def database_from_env() -> dict:
    """Return the default database: DATABASE_URL, or a SQLite file in DATA_DIR.

    Under ASGI every request may run in another thread, so persistent connections
    (CONN_MAX_AGE) would leak; PostgreSQL uses psycopg's pool instead, and SQLite runs
    in WAL mode with IMMEDIATE transactions so concurrent writers queue instead of
    failing with "database is locked".
    """
    url = env_url("DATABASE_URL", schemes=("sqlite", "postgres", "postgresql"))
    if not url:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{DATA_DIR / 'chatweb.sqlite3'}"
    try:
        # Health checks: after PostgreSQL drops connections (restart, failover), the pool
        # would otherwise hand out each dead one once, failing that request or save.
        database = dj_database_url.parse(url, conn_max_age=0, conn_health_checks=True)
    except ValueError as error:
        raise EnvError("DATABASE_URL", str(error).split("\n")[0]) from None
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        database["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
    else:
        pool_size = env_int("DATABASE_POOL_SIZE", 10, minimum=1)
        database["OPTIONS"] = {
            "pool": {"min_size": 1, "max_size": pool_size, "timeout": 10},
        }
    return database


DATABASES = {"default": database_from_env()}
# Threads that run the database work of websockets and streaming answers; each uses one
# connection, so with PostgreSQL they must leave room in the pool for page requests.
DATABASE_THREADS = env_int("DATABASE_THREADS", 4, minimum=1)
_pool = DATABASES["default"]["OPTIONS"].get("pool")
if _pool and _pool["max_size"] <= DATABASE_THREADS:
    raise EnvError("DATABASE_THREADS", "must be smaller than DATABASE_POOL_SIZE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer ---------------------------------------------------------------------

REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Gateway ---------------------------------------------------------------------------

OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_url("OPENAI_BASE_URL", schemes=("http", "https")) or (
    "https://api.openai.com/v1" if OPENAI_API_KEY else ""
)
if OPENAI_BASE_URL and not OPENAI_API_KEY:
    raise EnvError("OPENAI_API_KEY", "must be set when OPENAI_BASE_URL is set")
# Without a key the app answers with the offline simulator. In development that is the
# point; in production it would hand users canned answers charged to their quotas, so
# with DEBUG off it has to be asked for by name (chatweb/checks.py says so in --deploy).
GATEWAY = env_str("GATEWAY").lower()
if GATEWAY not in ("", "simulator"):
    raise EnvError("GATEWAY", f"expected 'simulator' or nothing, got {GATEWAY!r}")
if GATEWAY == "simulator" and OPENAI_API_KEY:
    raise EnvError("GATEWAY", "is 'simulator' but OPENAI_API_KEY is set: unset one of them")
if not DEBUG and not OPENAI_API_KEY and GATEWAY != "simulator":
    raise EnvError(
        "OPENAI_API_KEY",
        "must be set when DEBUG is off (or set GATEWAY=simulator to serve the offline "
        "simulator's canned answers on purpose)",
    )
GATEWAY_CONNECT_TIMEOUT = env_float("GATEWAY_CONNECT_TIMEOUT", 10.0, minimum=0.1)
GATEWAY_READ_TIMEOUT = env_float("GATEWAY_READ_TIMEOUT", 120.0, minimum=1.0)
GATEWAY_MAX_RETRIES = env_int("GATEWAY_MAX_RETRIES", 2)
# One connection per streaming answer: the most answers one process streams at once.
GATEWAY_MAX_CONNECTIONS = env_int("GATEWAY_MAX_CONNECTIONS", 1000, minimum=1)
# The context mode of new catalogue entries: "auto" (continue upstream with
# previous_response_id, replay when the gateway shows it ignores it), or with 0 "replay"
# (keep nothing upstream: every turn replays the history from our database).
GATEWAY_STORE = env_bool("GATEWAY_STORE", default=True)
# Whether the gateway takes the fields OpenAI documents that relays refuse (`store`,
# `stream_options`): unset, yes for api.openai.com and the simulator only.
GATEWAY_OPENAI_OPTIONS = (
    env_bool("GATEWAY_OPENAI_OPTIONS") if "GATEWAY_OPENAI_OPTIONS" in os.environ else None
)
# Tokens per second of the embedded simulator (used only when OPENAI_API_KEY is unset).
SIMULATOR_TOKENS_PER_SECOND = env_float("SIMULATOR_TOKENS_PER_SECOND", 40.0, minimum=1.0)
# On SIGTERM a process takes no new turns and lets running answers finish for up to
# this long before saving them as interrupted (chatweb/graceful.py); the container's
# stop timeout must be longer (docker-compose.yml: stop_grace_period).
SHUTDOWN_GRACE_SECONDS = env_float("SHUTDOWN_GRACE_SECONDS", 60.0)

# --- Chat ------------------------------------------------------------------------------

CHAT_MAX_MESSAGE_CHARS = env_int("CHAT_MAX_MESSAGE_CHARS", 32_000, minimum=1)
# A conversation's instructions are sent with every turn, so they are capped too.
CHAT_MAX_INSTRUCTIONS_CHARS = env_int("CHAT_MAX_INSTRUCTIONS_CHARS", 8_000, minimum=1)
# What every turn of every conversation tells the model first (the team's house rules),
# before an assistant's, the user's custom instructions and the conversation's own.
CHAT_SITE_INSTRUCTIONS = env_str("CHAT_SITE_INSTRUCTIONS", "")
CHAT_MAX_CONCURRENT_GENERATIONS = env_int("CHAT_MAX_CONCURRENT_GENERATIONS", 3, minimum=1)
# Frames one chat socket may send per second, and at once; more are dropped with a notice.
CHAT_FRAMES_PER_SECOND = env_int("CHAT_FRAMES_PER_SECOND", 10, minimum=1)
CHAT_FRAME_BURST = env_int("CHAT_FRAME_BURST", 30, minimum=1)
# Bytes a chat socket may leave unread (queued in the server and its kernel) before it
# is closed and the page reconnects; without it a client that stops reading grows the
# process without limit.
CHAT_SOCKET_BACKLOG_BYTES = env_int("CHAT_SOCKET_BACKLOG_BYTES", 4 * 1024 * 1024, minimum=65_536)
# Turns (sends, edits, regenerations) one user may start per minute; admins can set
# another number per user or group beside their token quotas.
CHAT_TURNS_PER_MINUTE = env_int("CHAT_TURNS_PER_MINUTE", 20, minimum=1)
# Requests a turn may send back with tool results before the app stops the model.
CHAT_MAX_TOOL_ROUNDS = env_int("CHAT_MAX_TOOL_ROUNDS", 8, minimum=1)
# Tokens the text of one message's documents may take together when sent as text to a
# model whose catalogue entry has no context window (with one: half of it,
# pipeline/inputs.py FILE_TEXT_SHARE); longer text is cut, and the answer says so.
CHAT_FILE_TEXT_TOKENS = env_int("CHAT_FILE_TEXT_TOKENS", 60_000, minimum=1)
CHAT_MAX_IMAGE_BYTES = env_int("CHAT_MAX_IMAGE_BYTES", 10 * 1024 * 1024, minimum=1)
# 16 MP is more than any model looks at (they scale images down to ~1-2 MP) and caps
# what one decode costs: 64 MB for RGBA. A 154 KB PNG can claim 40 MP and cost 160 MB.
CHAT_MAX_IMAGE_PIXELS = env_int("CHAT_MAX_IMAGE_PIXELS", 16_000_000, minimum=1)
# Images one process decodes at once (uploads, thumbnails); the rest wait their turn.
CHAT_IMAGE_DECODES = env_int("CHAT_IMAGE_DECODES", 2, minimum=1)
# Files (images and documents) one user may upload per minute (across processes when
# Redis is the cache).
CHAT_UPLOADS_PER_MINUTE = env_int("CHAT_UPLOADS_PER_MINUTE", 30, minimum=1)
CHAT_MAX_IMAGES_PER_MESSAGE = env_int("CHAT_MAX_IMAGES_PER_MESSAGE", 4, minimum=1)
# Documents (PDF, Word, text and code files): the largest file, the most PDF pages and
# documents one message may carry, and the most characters of text kept from one file
# (beyond it the text is cut and the cut noted). Their text is read in a separate
# process, at most CHAT_EXTRACT_WORKERS at once per app process, each stopped after
# CHAT_EXTRACT_SECONDS (a hostile PDF can make a parser spin).
CHAT_MAX_FILE_BYTES = env_int("CHAT_MAX_FILE_BYTES", 20 * 1024 * 1024, minimum=1)
CHAT_MAX_PDF_PAGES = env_int("CHAT_MAX_PDF_PAGES", 300, minimum=1)
CHAT_MAX_FILES_PER_MESSAGE = env_int("CHAT_MAX_FILES_PER_MESSAGE", 5, minimum=1)
# Members a group conversation may have besides its owner.
CHAT_MAX_GROUP_MEMBERS = env_int("CHAT_MAX_GROUP_MEMBERS", 50, minimum=1)
CHAT_MAX_EXTRACTED_CHARS = env_int("CHAT_MAX_EXTRACTED_CHARS", 2_000_000, minimum=1_000)
CHAT_EXTRACT_WORKERS = env_int("CHAT_EXTRACT_WORKERS", 2, minimum=1)
CHAT_EXTRACT_SECONDS = env_int("CHAT_EXTRACT_SECONDS", 15, minimum=1)
# Deleting a user deletes their conversations and share links; when this is on, a frozen
# copy of each conversation is kept for admin review (conversations/sharing.py).
RETAIN_DELETED_USER_CONVERSATIONS = env_bool("RETAIN_DELETED_USER_CONVERSATIONS", default=False)

# --- Auth ------------------------------------------------------------------------------

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat"
LOGOUT_REDIRECT_URL = "login"
# Single sign-on (chatweb/sso/): OIDC_PROVIDERS names the identity providers, each
# configured by OIDC_<NAME>_* variables; PASSWORD_LOGIN=staff-only keeps passwords for
# staff alone. README.md's "Single sign-on" section lists every variable.
from chatweb.sso.config import providers_from_env, rules_from_env  # noqa: E402

OIDC_PROVIDERS = providers_from_env()
OIDC_RULES = rules_from_env()
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    # Loads sessions that began at a provider; signs no one in through authenticate().
    "chatweb.sso.backend.ProviderBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation --------------------------------------------------------------

# The interface follows the browser (Accept-Language) until someone picks a language in
# the sidebar; a signed-in user's pick is kept on their account (conversations/preferences.py).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE") or "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ----------------------------------------------------------------------

STATIC_URL = "static/"
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
MEDIA_ROOT = DATA_DIR / "media"
# In development WhiteNoise serves straight from the finders, so no collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security --------------------------------------------------------------------------
# Headers, cookies, request limits, the Content-Security-Policy (django-csp) and login
# throttling (chatweb/security.py). Tested in tests/test_security.py and tests/test_xss.py.

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The whole body of a non-file POST; uploaded files are capped by CHAT_MAX_IMAGE_BYTES
# and CHAT_MAX_FILE_BYTES (nginx: client_max_body_size 25m).
DATA_UPLOAD_MAX_MEMORY_SIZE = 25 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
DATA_UPLOAD_MAX_NUMBER_FILES = 10
if env_bool("HTTPS", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    # Preloading commits the whole registrable domain to HTTPS in browsers' built-in lists;
    # only its owner can decide that, so it is opt-in (see SILENCED_SYSTEM_CHECKS below).
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    # The image's HEALTHCHECK (`python -m chatweb.healthprobe`) says X-Forwarded-Proto:
    # https and names an allowed host, so it passes this redirect as a proxied request does.
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# Content-Security-Policy: scripts only from this origin with the page's nonce, no inline
# style (htmx's indicator style is turned off in base.html), no eval (hx-on is not used),
# nothing may frame the app. CSP Level 3 'self' also matches same-origin ws:/wss:.
from csp.constants import NONCE, NONE, SELF  # noqa: E402

from chatweb.sso.config import origin_of  # noqa: E402

INSTALLED_APPS.append("csp")
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "csp.middleware.CSPMiddleware",
)
TEMPLATES[0]["OPTIONS"]["context_processors"].append("chatweb.security.csp_nonce")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        # Signing out of a provider is a form post redirected to its end_session_endpoint,
        # which a form-action without its origin would block.
        "form-action": [SELF, *sorted({origin_of(p.issuer) for p in OIDC_PROVIDERS})],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

# Login throttling (chatweb/login_throttle.py): attempts per (user name, address) and
# failures per address across names within the window, in the default cache.
LOGIN_THROTTLE_FAILURES = env_int("LOGIN_THROTTLE_FAILURES", 5, minimum=1)
LOGIN_THROTTLE_ADDRESS_FAILURES = env_int("LOGIN_THROTTLE_ADDRESS_FAILURES", 20, minimum=1)
LOGIN_THROTTLE_MINUTES = env_int("LOGIN_THROTTLE_MINUTES", 15, minimum=1)
# How many reverse proxies in front of the app append to X-Forwarded-For; the client's
# address is the entry that many from the end (chatweb/clientaddress.py). 0: the peer.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if REDIS_URL:
    # Shared by every process, so a throttle cannot be dodged by reaching another one.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "chatweb",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Logging ---------------------------------------------------------------------------

# Every line goes through one handler whose filter replaces the gateway key, whatever
# its shape, in the message, its arguments and any traceback (chatweb/logredact.py).
# Django's own loggers are routed there too instead of to their DEBUG-only console.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "chatweb.logredact.RedactSecrets"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL") or "INFO"},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
