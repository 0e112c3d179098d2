"""Create bench users with ready-made sessions and a plain model: `python -m bench.seed N`.

Runs against whatever DATABASE_URL says, after `manage.py migrate` and `seed_catalogue`.
Prints JSON: {"model": <ModelChoice pk>, "sessions": [session keys...]}.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    import django

    django.setup()
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction

    from conversations.models import ModelChoice

    count = int(sys.argv[1])
    user_model = get_user_model()
    unusable = make_password(None)
    with transaction.atomic():
        model = ModelChoice.objects.get(upstream_id="sim-chat")
        # A plain chat model: no tools, so every answer is one streamed message.
        model.tools = []
        model.supports_function_tools = False
        model.save()
        user_model.objects.bulk_create(
            user_model(username=f"bench{index:05d}", password=unusable) for index in range(count)
        )
    sessions = []
    for user in user_model.objects.filter(username__startswith="bench").order_by("username"):
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        sessions.append(store.session_key)
    print(json.dumps({"model": model.pk, "sessions": sessions}))


if __name__ == "__main__":
    main()
