"""Turns written through `starts` and `endings` inside the test's transaction; no gateway.

`send` saves a question and its streaming answer as the consumer's send does;
`finish` saves the answer as the generation task would on a complete stream. Tests that
count statements or check what a send admits use these, so no background task runs.
"""

from __future__ import annotations

import io
import os

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from conversations.attachments import images
from conversations.gateway.response import Usage
from conversations.models import ModelChoice
from conversations.pipeline import endings, starts
from conversations.pipeline.answer import AnswerState, Outcome
from conversations.pipeline.plans import TurnOptions

# A send on an existing conversation, inside the test's transaction (so its own
# transaction is a savepoint; in production it is BEGIN ... COMMIT, not counted):
# SAVEPOINT; the user's turn gate, locked, and its UPDATE with this start (the rate
# limit, and the lock that makes the concurrency limit hold for parallel sends); the
# conversation, locked, with its model and the user's running answers (the concurrency
# limit: read after the gate's lock, so it sees every turn started before); the
# conversation's messages; INSERT the question; the day and the month hold (conditional
# UPDATEs on counters this process knows); INSERT the answer and its running row; one
# UPDATE of the conversation; RELEASE. The user's limits and model access are cached
# (`usage.limits`, `catalogue.access`).
SEND_STATEMENTS = 12
# A regeneration: SAVEPOINT; the old answer; as a send from the gate to the conversation's
# UPDATE, without a question to insert; the question's images, which it sends again;
# RELEASE.
REGENERATE_STATEMENTS = 13


def model(upstream_id: str = "sim-chat") -> ModelChoice:
    return ModelChoice.objects.get(upstream_id=upstream_id)


def send(
    user,
    conversation_id=None,
    text="Hello",
    upstream_id="sim-chat",
    *,
    model_id=None,
    instructions=None,
    **options,
):
    return starts.prepare_send(
        user=user,
        conversation_id=conversation_id,
        text=text,
        model_id=model_id or model(upstream_id).pk,
        instructions=instructions,
        worker_channel="worker-1",
        options=TurnOptions(**options),
    )


def send_counting_statements(user, conversation_id):
    """Send one more question; return the result and the SQL it ran."""
    model_id = model().pk  # looked up outside the count
    with CaptureQueriesContext(connection) as statements:
        result = send(user, conversation_id, text="One more", model_id=model_id)
    return result, [query["sql"] for query in statements.captured_queries]


def finish(plan, text="An answer.", usage=Usage(12, 0, 30, 0, 42)):  # noqa: B008
    state = AnswerState(
        text=text, response_id=f"resp_{plan.answer_id}", usage=usage, outcome=Outcome("complete")
    )
    return endings.finish_answer(plan, state, previous_id="")


def conversation_with_turns(user, turns: int = 3) -> int:
    conversation_id = None
    for number in range(turns):
        result = send(user, conversation_id, text=f"Question {number}")
        finish(result.plan, text=f"Answer {number}")
        conversation_id = result.conversation.pk
    return conversation_id


def image(user):
    """Store a small random PNG as `user`'s upload (under settings.MEDIA_ROOT)."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (20, 10), os.urandom(600)).save(buffer, "PNG")
    upload = SimpleUploadedFile("cat.png", buffer.getvalue(), content_type="image/png")
    return images.store_upload(user=user, uploaded_file=upload)
