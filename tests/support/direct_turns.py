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
from conversations.pipeline import endings, quicksend
from conversations.pipeline.answer import AnswerState, Outcome
from conversations.pipeline.plans import TurnOptions

# A send on an existing conversation, inside the test's transaction (so its own
# transaction is a savepoint; in production it is BEGIN ... COMMIT, not counted), takes
# SAVEPOINT, three statements (`pipeline.quicksend`) and RELEASE on PostgreSQL: the
# user's turn gate, locked; the conversation, locked, with the user's running answers
# (read after the gate's lock, so it sees every turn started before), the model and the
# messages; and one write of the gate's log, the day's and the month's holds, the
# question, the answer, its running row and the conversation. SQLite runs the write's
# seven parts one by one, in process. The user's limits and model access are cached
# (`usage.limits`, `catalogue.access`).
SEND_STATEMENTS = 5 if connection.vendor == "postgresql" else 11
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
    return quicksend.prepare_send(
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
