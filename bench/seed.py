"""Create bench users with ready-made sessions and a plain model: `python -m bench.seed N`.

Runs against whatever DATABASE_URL says, after `manage.py migrate` and `seed_catalogue`.
Prints JSON: {"model": <ModelChoice pk>, "sessions": [session keys...]}.

`python -m bench.seed group N`, after that, makes the first N bench users (in the order
of their sessions) one group conversation: the first owns it, the others are members,
and the model answers every message. Prints JSON: {"conversation": <pk>, "speaker":
the owner's name, which the model reads before each of their questions}.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    import django

    django.setup()
    if sys.argv[1] == "group":
        group(int(sys.argv[2]))
    else:
        users(int(sys.argv[1]))


def users(count: int) -> None:
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


def group(count: int) -> None:
    """Make the first `count` bench users a group conversation (see the module's docstring)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from conversations.groups.people import display_name
    from conversations.models import AnswerMode, Conversation, ConversationMember, ModelChoice

    people = list(
        get_user_model().objects.filter(username__startswith="bench").order_by("username")[:count]
    )
    owner, members = people[0], people[1:]
    with transaction.atomic():
        conversation = Conversation.objects.create(
            owner=owner,
            title="Bench group",
            model=ModelChoice.objects.get(upstream_id="sim-chat"),
            is_group=True,
            # With more than two people the default answers only when mentioned.
            answer_mode=AnswerMode.EVERY,
        )
        ConversationMember.objects.bulk_create(
            ConversationMember(conversation=conversation, user=member, invited_by=owner)
            for member in members
        )
    print(json.dumps({"conversation": conversation.pk, "speaker": display_name(owner)}))


if __name__ == "__main__":
    main()
