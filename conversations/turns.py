"""A turn, start to stop: the one API consumers (and tests) use to chat.

Each function authorises through the ORM (`for_user`), does its database work in one
synchronous transaction (`records`), starts or stops the `Generation` and tells the
user's other sockets. Nothing here knows about websockets or HTML.
"""

from __future__ import annotations

from channels.db import database_sync_to_async

from conversations import broadcast, records
from conversations.generation import Generation
from conversations.live import get_hub
from conversations.plans import TurnOptions
from conversations.records import Refused, SendResult

__all__ = ["Refused", "retry", "send", "stop"]


async def send(
    *,
    user,
    conversation_id: int | None,
    text: str,
    model_id: int | None = None,
    instructions: str | None = None,
    options: TurnOptions = TurnOptions(),  # noqa: B008 - frozen, so sharing it is safe
) -> SendResult:
    """Save the user's message, start generating the answer, and tell the other tabs."""
    worker_channel = await get_hub().ensure_worker_channel()
    result = await database_sync_to_async(records.prepare_send)(
        user=user,
        conversation_id=conversation_id,
        text=text,
        model_id=model_id,
        instructions=instructions,
        worker_channel=worker_channel,
        options=options,
    )
    plan = result.plan
    Generation(plan).launch()
    await broadcast.turn_started(
        user.pk,
        plan.conversation_id,
        user_message_id=plan.user_message_id,
        answer_id=plan.answer_id,
    )
    await broadcast.conversation_changed(user.pk, plan.conversation_id)
    return result


async def retry(*, user, message_id: int):
    """Generate a fresh answer in place of a failed or stopped one."""
    worker_channel = await get_hub().ensure_worker_channel()
    plan, replaced = await database_sync_to_async(records.prepare_retry)(
        user=user, message_id=message_id, worker_channel=worker_channel
    )
    Generation(plan).launch()
    await broadcast.turn_started(
        user.pk,
        plan.conversation_id,
        user_message_id=None,
        answer_id=plan.answer_id,
        replaces=replaced,
    )
    return plan, replaced


async def stop(*, user, message_id: int) -> bool:
    """Stop the user's answer `message_id`, whichever process generates it."""
    answer = await database_sync_to_async(records.streaming_answer)(user, message_id)
    if answer is None:
        return False
    generation = get_hub().generations.get(answer.pk)
    if generation is not None:
        generation.stop()
        return True
    if not answer.worker_channel:
        return False
    return await broadcast.send_to_channel(
        answer.worker_channel, {"type": "generation.stop", "message_id": answer.pk}
    )
