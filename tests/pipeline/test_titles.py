"""Conversation titles: a cheap model writes them, outside the user's quota."""

from __future__ import annotations

import asyncio
import io

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from conversations.attachments import images
from conversations.gateway.response import Usage
from conversations.models import (
    Conversation,
    Message,
    ModelChoice,
    Quota,
    UsageRecord,
    UserPreference,
)
from conversations.pipeline import starts, titles, turns
from conversations.pipeline.live import get_hub
from conversations.pipeline.plans import TurnOptions
from conversations.usage import quotas
from tests.support.direct_turns import finish
from tests.support.waiting import wait_until_async


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def model(upstream_id: str) -> ModelChoice:
    return ModelChoice.objects.get(upstream_id=upstream_id)


def picture(user, name: str = "photo.png"):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), "teal").save(buffer, "PNG")
    upload = SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")
    return images.store_upload(user=user, uploaded_file=upload)


def send(user, text: str, upstream_id: str = "sim-chat", **options):
    return starts.prepare_send(
        user=user,
        conversation_id=None,
        text=text,
        model_id=model(upstream_id).pk,
        instructions=None,
        worker_channel="worker-1",
        options=TurnOptions(**options),
    )


# --- Which model writes titles --------------------------------------------------------


def test_title_model_is_the_cheapest_model_that_does_not_reason(catalogue):
    # Sim OSS is cheaper but reasons; Sim Mini is the cheapest that answers directly.
    assert titles.title_model().upstream_id == "sim-mini"


def test_title_model_is_the_one_the_admin_marked(catalogue):
    ModelChoice.objects.filter(upstream_id="sim-chat").update(use_for_titles=True)

    assert titles.title_model().upstream_id == "sim-chat"


def test_title_model_is_the_cheapest_of_several_marked(catalogue):
    ModelChoice.objects.filter(upstream_id__in=["sim-chat", "sim-mini"]).update(use_for_titles=True)

    assert titles.title_model().upstream_id == "sim-mini"


def test_title_model_skips_a_marked_model_that_is_disabled(catalogue):
    ModelChoice.objects.filter(upstream_id="sim-chat").update(use_for_titles=True, enabled=False)

    assert titles.title_model().upstream_id == "sim-mini"


def test_title_model_passes_over_a_model_the_gateway_does_not_know(catalogue):
    ModelChoice.objects.filter(upstream_id="sim-mini").update(unknown_to_gateway_at=timezone.now())

    assert titles.title_model().upstream_id == "sim-chat"


def test_title_model_reasons_only_when_nothing_else_is_enabled(catalogue):
    ModelChoice.objects.filter(supports_reasoning=False).update(enabled=False)

    assert titles.title_model().upstream_id == "sim-oss"


def test_title_model_ties_go_to_the_first_in_the_catalogue(db):
    for position, name in ((20, "second"), (10, "first")):
        ModelChoice.objects.create(upstream_id=name, label=name, position=position)

    assert titles.title_model().upstream_id == "first"


def test_title_model_is_none_without_enabled_models(catalogue):
    ModelChoice.objects.update(enabled=False)

    assert titles.title_model() is None


# --- What the request sends -----------------------------------------------------------


def test_title_job_is_skipped_for_a_user_over_quota(user, catalogue):
    Quota.objects.create(user=user, tokens_per_day=500)
    result = send(user, "How do I bake bread?")
    quotas.settle(result.plan.reservation, total_tokens=500)

    job = titles.title_job(result.plan)

    assert job.model is None and job.fallback == "How do I bake bread?"


def test_title_job_of_images_only_names_the_image(user, catalogue):
    image = picture(user)
    result = send(user, "", attachment_ids=(image.pk,))

    job = titles.title_job(result.plan, "A teal square.")

    assert (job.model, job.fallback) == (None, "Image: photo.png")


def test_title_job_of_several_images_names_them_all(user, catalogue):
    UserPreference.objects.create(user=user, language="en")
    result = send(user, "", attachment_ids=(picture(user).pk, picture(user, "b.png").pk))

    assert titles.title_job(result.plan).fallback == "Images: photo.png, b.png"


def test_title_usage_is_recorded_but_not_charged(user, catalogue):
    result = send(user, "Hello")
    spent = Usage(5, 0, 37, 0, 42)

    assert titles.record_title(result.plan, "Greetings", spent, model=model("sim-mini"))

    record = UsageRecord.objects.get(purpose=UsageRecord.Purpose.TITLE)
    assert (record.model_name, record.total_tokens) == ("sim-mini", 42)
    assert [status.used for status in quotas.status(user)] == [0, 0]


# --- End to end, through the simulator -------------------------------------------------


@sync_to_async
def title_records() -> list[UsageRecord]:
    return list(UsageRecord.objects.filter(purpose="title"))


@sync_to_async
def reasoner_id() -> int:
    return model("sim-reasoner").pk


@sync_to_async
def used_today(user) -> int:
    return quotas.status(user)[0].used


@sync_to_async
def answer_tokens(answer_id: int) -> int:
    return UsageRecord.objects.get(message_id=answer_id).total_tokens


@sync_to_async
def title_of(conversation_id: int) -> str:
    return Conversation.objects.get(pk=conversation_id).title


@pytest.mark.django_db(transaction=True)
async def test_title_of_a_reasoning_conversation_is_written_cheaply_and_free(gateway, user):
    await sync_to_async(Quota.objects.create)(user=user, tokens_per_day=100_000)
    result = await turns.send(
        user=user,
        conversation_id=None,
        text="How do I bake sourdough?",
        model_id=await reasoner_id(),
    )

    [record] = await wait_until_async(title_records, what="the title's usage record")

    assert record.model_name == "sim-mini"
    assert await used_today(user) == await answer_tokens(result.plan.answer_id)
    assert await title_of(result.conversation.pk)


@pytest.mark.django_db(transaction=True)
async def test_title_of_a_user_at_the_limit_costs_nothing(gateway, user):
    @sync_to_async
    def fill_the_quota() -> None:
        Quota.objects.create(user=user, tokens_per_day=1)

    result = await turns.send(user=user, conversation_id=None, text="Bake sourdough please")
    await fill_the_quota()

    title = await wait_until_async(lambda: title_of(result.conversation.pk), what="a title")

    assert title == "Bake sourdough please"
    assert not await title_records()


# --- Off the answer's path, and limited per process ------------------------------------


def test_title_requests_allow_a_burst_then_refuse():
    limit = titles.TitleRequests(at_once=100, per_second=1, burst=3, clock=lambda: 0.0)

    assert [limit.admit() for _ in range(5)] == [True, True, True, False, False]


def test_title_requests_come_back_with_time():
    now = [0.0]
    limit = titles.TitleRequests(at_once=100, per_second=2, burst=1, clock=lambda: now[0])
    limit.admit()

    now[0] += 0.5

    assert (limit.admit(), limit.admit()) == (True, False)


def test_title_requests_are_few_at_once():
    limit = titles.TitleRequests(at_once=2, per_second=100, burst=100, clock=lambda: 0.0)
    assert (limit.admit(), limit.admit(), limit.admit()) == (True, True, False)

    limit.release()

    assert limit.admit()


@sync_to_async
def new_conversations(user, count: int):
    """Start `count` conversations and answer each (a user has few answers running at once)."""
    started = []
    for number in range(count):
        started.append(send(user, f"Question number {number} about bread"))
        finish(started[-1].plan)
    return started


@pytest.mark.django_db(transaction=True)
async def test_a_burst_of_new_conversations_is_named_within_the_limit(gateway, user, monkeypatch):
    monkeypatch.setattr(titles, "title_requests", titles.TitleRequests(per_second=0.001, burst=2))
    started = await new_conversations(user, 5)

    named = await asyncio.gather(*(titles.generate_title(result.plan, "") for result in started))

    questions = [result.plan.first_user_text for result in started]
    assert len(await title_records()) == 2
    assert sum(title == question for title, question in zip(named, questions, strict=True)) == 3
    assert [await title_of(result.conversation.pk) for result in started] == named


@sync_to_async
def hanging_title_model() -> None:
    """Make the title model one that never answers."""
    hanging = model("sim-mini")
    hanging.pk, hanging.upstream_id, hanging.use_for_titles = None, "sim-mini+fault=hang", True
    hanging.save()


@sync_to_async
def status_of(answer_id: int) -> str:
    return Message.objects.get(pk=answer_id).status


@pytest.mark.django_db(transaction=True)
async def test_a_title_model_that_hangs_keeps_no_answer_waiting(gateway, user, monkeypatch):
    monkeypatch.setattr(titles, "title_requests", titles.TitleRequests())
    await hanging_title_model()
    result = await turns.send(user=user, conversation_id=None, text="How do I bake sourdough?")

    await get_hub().generations[result.plan.answer_id].finished()

    assert await status_of(result.plan.answer_id) == "complete"
    assert await title_of(result.conversation.pk) == ""
