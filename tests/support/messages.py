"""Messages written straight to the database, for tests of what pages show."""

from __future__ import annotations

from conversations.models import Message


def say(conversation, question: str, answer: str, **answer_fields) -> tuple[Message, Message]:
    """Add a question and its answer at the end of the visible branch."""
    branch = conversation.visible_branch()
    asked = Message.objects.create(
        conversation=conversation,
        parent=branch[-1] if branch else None,
        role="user",
        text=question,
    )
    fields = {"model_name": "sim-chat", "response_id": f"resp_{asked.pk}", **answer_fields}
    answered = Message.objects.create(
        conversation=conversation, parent=asked, role="assistant", text=answer, **fields
    )
    return asked, answered
