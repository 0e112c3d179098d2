"""The gateway key never reaches a page, a stored error, an export or a log line."""

from __future__ import annotations

import logging

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from conversations.models import Message
from conversations.pipeline import turns
from tests.support.turns import finished

pytestmark = pytest.mark.django_db(transaction=True)

WRONG_KEY = "sk-live-WRONGKEY-0123456789abcdefghijklmnop"


async def test_a_refused_key_is_in_no_page_error_export_or_log(gateway, user, settings, caplog):
    settings.OPENAI_API_KEY = WRONG_KEY  # the simulator answers 401, echoing the key
    caplog.set_level(logging.DEBUG)

    result = await turns.send(user=user, conversation_id=None, text="Hello")
    answer = await finished(result.plan.answer_id)

    @sync_to_async
    def everything_a_user_or_admin_sees() -> str:
        client = Client()
        client.force_login(user)
        pk = result.conversation.pk
        pages = [client.get(url) for url in (f"/c/{pk}/", f"/c/{pk}/export.json", "/usage/")]
        stored = " ".join(Message.objects.values_list("error", flat=True))
        return stored + "".join(page.content.decode() for page in pages)

    seen = await everything_a_user_or_admin_sees()
    assert answer.error_code == "auth"
    assert WRONG_KEY not in seen
    assert WRONG_KEY not in caplog.text
    assert "WRONGKEY" not in caplog.text
