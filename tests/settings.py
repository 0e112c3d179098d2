"""Settings for the test suite: the real settings with a throwaway secret key.

The suite runs with DEBUG off, as production does; static files come straight from the
finders so browser tests need no collectstatic.
"""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-" + "x" * 40)
# No gateway key with DEBUG off is refused unless the simulator is asked for by name.
# Only for reading the settings: servers the suite starts with a key must not inherit it.
_asked_for_simulator = not os.environ.get("OPENAI_API_KEY") and "GATEWAY" not in os.environ
if _asked_for_simulator:
    os.environ["GATEWAY"] = "simulator"
try:
    from chatweb.settings import *  # noqa: F403
finally:
    if _asked_for_simulator:
        del os.environ["GATEWAY"]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Test databases reuse user ids after a rollback, and the cache outlives each test: the
# per-user upload count would carry over from test to test. Its own tests set a limit.
CHAT_UPLOADS_PER_MINUTE = 1_000_000
# The suite's Daphne servers outlive the flushes that recreate content types with new ids
# on PostgreSQL (tests/support/content_types.py).
MIDDLEWARE = [*MIDDLEWARE, "tests.support.content_types.fresh_content_types"]  # noqa: F405
