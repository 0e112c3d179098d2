"""Whole turns without a socket: send a question and wait for its answer to finish.

`turns.send` starts the answer in a background task and returns at once; `finished`
polls the answer's row the way a reader reloading the page would, so a test sees the
answer exactly as it was saved.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async

from conversations.models import Message, ModelChoice
from conversations.pipeline import turns
from conversations.pipeline.plans import TurnOptions
from tests.support.waiting import wait_until_async


def model_pk(upstream_id: str) -> int:
    """Return the catalogue entry for `upstream_id`, adding a plain one if it is missing."""
    choice, _ = ModelChoice.objects.get_or_create(
        upstream_id=upstream_id, defaults={"label": upstream_id, "supports_reasoning": False}
    )
    return choice.pk


model_id = sync_to_async(model_pk)


@sync_to_async
def reload(pk: int) -> Message:
    return Message.objects.get(pk=pk)


async def finished(answer_id: int, timeout: float = 15.0) -> Message:
    """Wait until the answer leaves the streaming state; return it as saved."""

    async def done() -> Message | None:
        answer = await reload(answer_id)
        return None if answer.is_streaming else answer

    return await wait_until_async(
        done, timeout=timeout, what=f"the end of answer {answer_id}'s stream"
    )


async def ask(user, text: str, *, model: str | None = None, conversation_id=None, **options):
    """Send `text` (on `model`, else the default) and return (send result, final answer)."""
    result = await turns.send(
        user=user,
        conversation_id=conversation_id,
        text=text,
        model_id=await model_id(model) if model else None,
        options=TurnOptions(**options),
    )
    return result, await finished(result.plan.answer_id)
