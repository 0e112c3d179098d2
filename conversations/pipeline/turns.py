"""A turn, start to stop: the one API consumers (and tests) use to chat.

Each function authorises through the ORM (`for_user`), does its database work in one
synchronous transaction (`starts`, `runs`), starts or stops the `Generation` and tells the
user's other sockets. Nothing here knows about websockets or HTML.
"""

from __future__ import annotations

from conversations.pipeline import broadcast, quicksend, runs, starts
from conversations.pipeline.admission import ModelUnavailable, Refused
from conversations.pipeline.dbthreads import in_database_thread
from conversations.pipeline.generation import Generation
from conversations.pipeline.live import get_hub
from conversations.pipeline.plans import TurnOptions, TurnPlan
from conversations.pipeline.shutdown import refuse_while_draining
from conversations.pipeline.starts import SendResult

__all__ = [
    "ModelUnavailable",
    "Refused",
    "edit",
    "regenerate",
    "save_send",
    "send",
    "start_send",
    "stop",
    "switch_branch",
]


async def send(*, user, **turn) -> SendResult:
    """Save the user's message, start generating the answer, and tell the other tabs.

    `turn` is what `save_send` takes; a socket calls the two halves itself, to show the
    saved turn in between.
    """
    result = await save_send(user=user, **turn)
    await start_send(user, result)
    return result


async def save_send(
    *,
    user,
    conversation_id: int | None,
    text: str,
    model_id: int | None = None,
    instructions: str | None = None,
    options: TurnOptions = TurnOptions(),  # noqa: B008
) -> SendResult:
    """Save the user's message and its empty answer; nothing is generated yet.

    Apart from `start_send` so the sending socket can replace the turn it drew from the
    frame with the saved one before any fragment of the answer can reach the page.
    """
    refuse_while_draining()
    worker_channel = await get_hub().ensure_worker_channel()
    return await in_database_thread(quicksend.prepare_send)(
        user=user,
        conversation_id=conversation_id,
        text=text,
        model_id=model_id,
        instructions=instructions,
        worker_channel=worker_channel,
        options=options,
    )


async def start_send(user, result: SendResult) -> None:
    """Start generating a saved turn's answer and tell the tabs showing it, and the
    sidebars of everyone in it.

    A group member's message the model does not answer has no plan: the other members'
    tabs draw it and nothing is generated.
    """
    conversation_id = result.conversation.pk
    if result.plan is None:
        await broadcast.turn_started(
            conversation_id, user_message_id=result.messages[0].message.pk, answer_id=None
        )
    else:
        await launch(user, result.plan)
    await broadcast.conversation_changed(user.pk, conversation_id, others=result.people)


async def regenerate(
    *,
    user,
    message_id: int,
    model_id: int | None = None,
    options: TurnOptions = TurnOptions(),  # noqa: B008
) -> TurnPlan:
    """Answer the question of answer `message_id` again, as a new branch."""
    refuse_while_draining()
    worker_channel = await get_hub().ensure_worker_channel()
    plan = await in_database_thread(starts.prepare_regenerate)(
        user=user,
        message_id=message_id,
        worker_channel=worker_channel,
        model_id=model_id,
        options=options,
    )
    await launch(user, plan, branched=True)
    return plan


async def edit(*, user, message_id: int, text: str) -> TurnPlan:
    """Ask an edited version of question `message_id`, as a new branch."""
    refuse_while_draining()
    worker_channel = await get_hub().ensure_worker_channel()
    plan = await in_database_thread(starts.prepare_edit)(
        user=user, message_id=message_id, text=text, worker_channel=worker_channel
    )
    await launch(user, plan, branched=True)
    return plan


async def switch_branch(*, user, message_id: int) -> int:
    """Show the branch through `message_id` in every tab showing the conversation."""
    conversation_id = await in_database_thread(starts.switch_branch)(
        user=user, message_id=message_id
    )
    await broadcast.branch_switched(conversation_id)
    return conversation_id


async def launch(user, plan: TurnPlan, *, branched: bool = False) -> None:
    """Start generating the planned answer and tell the other tabs showing it."""
    Generation(plan).launch()
    await broadcast.turn_started(
        plan.conversation_id,
        user_message_id=plan.user_message_id,
        answer_id=plan.answer_id,
        branched=branched,
    )


async def stop(*, user, message_id: int) -> bool:
    """Stop answer `message_id` of a conversation the user is in (any member may),
    whichever process generates it."""
    running = await in_database_thread(runs.running_answer)(user, message_id)
    if running is None:
        return False
    generation = get_hub().generations.get(running.pk)
    if generation is not None:
        generation.stop()
        return True
    if not running.worker_channel:
        return False
    return await broadcast.send_to_channel(
        running.worker_channel, {"type": "generation.stop", "message_id": running.pk}
    )
