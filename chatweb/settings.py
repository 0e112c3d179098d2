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
if not DEBUG and len(SECRET_KEY) < 32:
    raise EnvError("SECRET_KEY", "is too short: use at least 32 random characters")

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

# --- Chat ------------------------------------------------------------------------------

CHAT_MAX_MESSAGE_CHARS = env_int("CHAT_MAX_MESSAGE_CHARS", 32_000, minimum=1)
CHAT_MAX_CONCURRENT_GENERATIONS = env_int("CHAT_MAX_CONCURRENT_GENERATIONS", 3, minimum=1)
CHAT_MAX_IMAGE_BYTES = env_int("CHAT_MAX_IMAGE_BYTES", 10 * 1024 * 1024, minimum=1)
CHAT_MAX_IMAGE_PIXELS = env_int("CHAT_MAX_IMAGE_PIXELS", 40_000_000, minimum=1)
CHAT_MAX_IMAGES_PER_MESSAGE = env_int("CHAT_MAX_IMAGES_PER_MESSAGE", 4, minimum=1)
# Deleting a user deletes their conversations and share links; when this is on, a frozen
# copy of each conversation is kept for admin review (conversations/sharing.py).
RETAIN_DELETED_USER_CONVERSATIONS = env_bool("RETAIN_DELETED_USER_CONVERSATIONS", default=False)

# --- Auth ------------------------------------------------------------------------------

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat"
LOGOUT_REDIRECT_URL = "login"
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
# The whole body of a non-file POST; uploaded files are capped by CHAT_MAX_IMAGE_BYTES.
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
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# Content-Security-Policy: scripts only from this origin with the page's nonce, no inline
# style (htmx's indicator style is turned off in base.html), no eval (hx-on is not used),
# nothing may frame the app. CSP Level 3 'self' also matches same-origin ws:/wss:.
from csp.constants import NONCE, NONE, SELF  # noqa: E402

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
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

# Login throttling: failures per (username, IP) within the window, in the default cache.
LOGIN_THROTTLE_FAILURES = env_int("LOGIN_THROTTLE_FAILURES", 5, minimum=1)
LOGIN_THROTTLE_MINUTES = env_int("LOGIN_THROTTLE_MINUTES", 15, minimum=1)
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL") or "INFO"},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
