"""A conversation takes one answer at a time, and an edited question keeps its images."""

from __future__ import annotations

import pytest

from conversations.models import Attachment, Message
from conversations.pipeline import admission, starts
from tests.support.direct_turns import finish, image, send

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


STILL_WRITING = "An answer is still being written in this conversation."


def test_send_is_refused_while_the_conversation_has_an_answer_streaming(user, catalogue):
    first = send(user, text="First")

    with pytest.raises(admission.Refused, match=STILL_WRITING):
        send(user, first.conversation.pk, text="Second")

    assert Message.objects.filter(conversation=first.conversation).count() == 2


def test_send_goes_through_once_the_answer_finished(user, catalogue):
    first = send(user, text="First")
    finish(first.plan)

    second = send(user, first.conversation.pk, text="Second")

    assert second.conversation.pk == first.conversation.pk


def test_another_conversation_may_start_while_one_streams(user, catalogue):
    send(user, text="First")

    assert send(user, text="Elsewhere").created


def test_edit_is_refused_while_the_conversation_has_an_answer_streaming(user, catalogue):
    first = send(user, text="First")

    with pytest.raises(admission.Refused, match=STILL_WRITING):
        starts.prepare_edit(
            user=user, message_id=first.plan.user_message_id, text="Again", worker_channel="w"
        )


def test_regenerate_is_refused_while_another_answer_of_the_conversation_streams(user, catalogue):
    first = send(user, text="First")
    finish(first.plan)
    second = send(user, first.conversation.pk, text="Second")

    with pytest.raises(admission.Refused, match=STILL_WRITING):
        starts.prepare_regenerate(user=user, message_id=first.plan.answer_id, worker_channel="w")
    assert second.plan.answer_id


def test_edited_question_keeps_the_images_and_sends_them(user, catalogue):
    picture = image(user)
    first = send(user, text="What is this?", attachment_ids=(picture.pk,))
    finish(first.plan)

    plan = starts.prepare_edit(
        user=user, message_id=first.plan.user_message_id, text="And this?", worker_channel="w"
    )

    edited = Message.objects.get(pk=plan.user_message_id)
    assert [a.original_name for a in edited.attachments.all()] == ["cat.png"]
    sent = plan.new_input[0]["content"] if plan.new_input else plan.history[-1]["content"]
    assert [part["type"] for part in sent] == ["input_text", "input_image"]


def test_edit_of_an_image_only_question_may_leave_the_text_empty(user, catalogue):
    picture = image(user)
    first = send(user, text="", attachment_ids=(picture.pk,))
    finish(first.plan)

    plan = starts.prepare_edit(
        user=user, message_id=first.plan.user_message_id, text="", worker_channel="w"
    )

    assert Message.objects.get(pk=plan.user_message_id).attachments.count() == 1


def test_deleting_the_edited_question_keeps_the_shared_image_file(
    user, catalogue, media, django_capture_on_commit_callbacks
):
    picture = image(user)
    first = send(user, text="What?", attachment_ids=(picture.pk,))
    finish(first.plan)
    plan = starts.prepare_edit(
        user=user, message_id=first.plan.user_message_id, text="Which?", worker_channel="w"
    )

    with django_capture_on_commit_callbacks(execute=True):
        Message.objects.filter(pk=plan.user_message_id).delete()

    assert (media / Attachment.objects.get(pk=picture.pk).file.name).exists()
    with django_capture_on_commit_callbacks(execute=True):
        first.conversation.delete()
    assert not (media / picture.file.name).exists()
