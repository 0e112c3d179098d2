"""An assistant as JSON: what leaves the site, and what import lets back in."""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from PIL import Image

from conversations.assistants import portable
from conversations.assistants.icons import store_icon
from conversations.assistants.library import record_version
from conversations.models import Assistant, ModelChoice, Visibility

SETUP = {
    "name": "Reviewer",
    "description": "Reads pull requests",
    "emoji": "🔍",
    "instructions": "Review the diff; be brief.",
    "reasoning_effort": "high",
    "web_search": True,
    "tools": ["calculate"],
    "starter_prompts": ["Review this diff", "What could break?"],
    "lock_options": True,
}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def png(color: str = "teal", size: tuple[int, int] = (300, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def model(db) -> ModelChoice:
    return ModelChoice.objects.create(
        upstream_id="sim-think",
        label="Sim Think",
        supports_reasoning=True,
        reasoning_efforts="low,medium,high",
    )


@pytest.fixture
def assistant(user, model) -> Assistant:
    made = Assistant(owner=user, model=model, visibility=Visibility.GROUPS, featured=True, **SETUP)
    record_version(made)
    made.groups.add(Group.objects.create(name="Engineers"))
    return made


def exported(**changes) -> dict:
    return {"format": "chatweb.assistant", "version": 1, **SETUP, "model": "sim-think", **changes}


def refusal(data, owner) -> str:
    with pytest.raises(ValidationError) as raised:
        portable.from_json(data, owner)
    return " ".join(raised.value.messages)


def test_export_holds_the_setup_and_nothing_of_the_site(assistant):
    data = portable.to_json(assistant)
    assert data == exported()
    assert not {"id", "owner", "groups", "featured", "enabled", "visibility"} & set(data)


def test_export_is_plain_json(assistant):
    assert json.loads(json.dumps(portable.to_json(assistant))) == portable.to_json(assistant)


def test_round_trip_gives_another_user_the_same_setup(assistant, other_user):
    imported = portable.from_json(portable.to_json(assistant), other_user)
    copy = imported.assistant
    assert imported.warnings == []
    assert portable.to_json(copy) == portable.to_json(assistant)
    assert copy.pk != assistant.pk and copy.owner == other_user


def test_import_is_private_unfeatured_and_enabled(assistant, other_user):
    copy = portable.from_json(portable.to_json(assistant), other_user).assistant
    assert copy.visibility == Visibility.PRIVATE and not copy.groups.exists()
    assert not copy.featured and copy.enabled and copy.handed_over_from == ""


def test_import_records_its_first_version(other_user, model):
    copy = portable.from_json(exported(), other_user).assistant
    assert list(copy.versions.values_list("number", "model_name")) == [(1, "sim-think")]


def test_import_without_the_model_warns_and_leaves_it_empty(other_user, db):
    imported = portable.from_json(exported(), other_user)
    assert imported.assistant.model is None
    assert "“sim-think” is not available on this site" in imported.warnings[0]


def test_import_of_a_disabled_model_warns(other_user, model):
    model.enabled = False
    model.save()
    imported = portable.from_json(exported(), other_user)
    assert imported.assistant.model is None and imported.warnings


def test_import_drops_an_effort_the_model_refuses_with_a_warning(other_user, model):
    imported = portable.from_json(exported(reasoning_effort="extreme"), other_user)
    assert imported.assistant.reasoning_effort == ""
    assert "reasoning effort was left out" in imported.warnings[0]


def test_import_drops_unknown_tools_with_a_warning(other_user, model):
    imported = portable.from_json(exported(tools=["calculate", "launch"]), other_user)
    assert imported.assistant.tools == ["calculate"]
    assert "no tool called “launch”" in imported.warnings[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "not a chatweb assistant"),
        ({"format": "something.else", "version": 1}, "not a chatweb assistant"),
        (exported(version=2), "format version 2; this site reads version 1"),
        (exported(version="1"), "“version” should be a whole number"),
        (exported(name=""), "has no name"),
        (exported(name=["Reviewer"]), "“name” should be text"),
        (exported(name="x" * 81), "“name” is 81 characters long; the limit is 80"),
        (exported(instructions="x" * 8001), "“instructions” is 8001 characters long"),
        (exported(web_search="yes"), "“web_search” should be true or false"),
        (exported(tools="calculate"), "“tools” should be a list of texts"),
        (exported(starter_prompts=[1, 2]), "“starter_prompts” should be a list of texts"),
        (exported(starter_prompts=list("abcde")), "at most 4 starter prompts"),
        (exported(icon="http://example.com/a.png"), "PNG image as a data: URL"),
        (exported(icon="data:image/png;base64,!!!"), "not valid base64"),
        (exported(icon="data:image/png;base64," + "A" * 800_000), "larger than 512 KB"),
    ],
)
def test_import_refuses_bad_input_saying_why(other_user, db, data, message):
    assert message in refusal(data, other_user)
    assert not Assistant.objects.exists()


def test_import_lists_every_problem_at_once(other_user, db):
    said = refusal(exported(name=3, web_search=1), other_user)
    assert "“name” should be text" in said and "“web_search” should be true or false" in said


def test_read_json_says_what_is_wrong():
    with pytest.raises(ValidationError, match="not valid JSON"):
        portable.read_json(b"{nope")
    with pytest.raises(ValidationError, match="not text in UTF-8"):
        portable.read_json(b"\xff\xfe{")


def test_import_all_takes_a_list_all_or_nothing(other_user, db):
    imported = portable.import_all([exported(name="One"), exported(name="Two")], other_user)
    assert [item.assistant.name for item in imported] == ["One", "Two"]
    with pytest.raises(ValidationError, match=r"Assistant 2: .*has no name"):
        portable.import_all([exported(name="Three"), exported(name="")], other_user)
    assert Assistant.objects.count() == 2


def test_export_carries_the_icon_as_a_data_url(assistant):
    store_icon(assistant, ContentFile(png(), name="face.png"))
    assistant.save()
    icon = portable.to_json(assistant)["icon"]
    assert icon.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(icon.split(",", 1)[1]))) as image:
        assert image.size == (128, 128)


def test_round_trip_brings_the_icon(assistant, other_user, media):
    store_icon(assistant, ContentFile(png(), name="face.png"))
    assistant.save()
    copy = portable.from_json(portable.to_json(assistant), other_user).assistant
    copy.refresh_from_db()
    assert copy.icon and copy.icon.name != assistant.icon.name
    assert portable.to_json(copy)["icon"] == portable.to_json(assistant)["icon"]


def test_import_refuses_an_icon_that_is_not_an_image(other_user, db, media):
    fake = "data:image/png;base64," + base64.b64encode(b"not a picture at all").decode()
    assert "The icon cannot be used" in refusal(exported(icon=fake), other_user)
    assert not Assistant.objects.exists() and not list(media.rglob("*.png"))


def test_a_refused_list_leaves_no_icon_files(other_user, db, media):
    icon = "data:image/png;base64," + base64.b64encode(png()).decode()
    with pytest.raises(ValidationError):
        portable.import_all([exported(icon=icon), exported(name="")], other_user)
    assert not list(media.rglob("*.png"))


@pytest.mark.django_db
def test_nul_characters_are_dropped_not_sent_to_the_database(user, model):
    imported = portable.from_json(
        exported(name="Re\x00viewer", starter_prompts=["Re\x00view"]), user
    ).assistant

    imported.refresh_from_db()
    assert (imported.name, imported.starter_prompts) == ("Reviewer", ["Review"])


@pytest.mark.django_db
def test_an_icon_of_too_many_pixels_is_refused_from_its_header(user, model):
    # 15 KB of one colour that would decode to 16 million pixels.
    huge = "data:image/png;base64," + base64.b64encode(png(size=(4000, 4000))).decode()

    assert "an icon may have at most 4,000,000" in refusal(exported(icon=huge), user)
    assert not Assistant.objects.filter(owner=user).exists()


@pytest.mark.django_db
def test_an_import_carries_at_most_twenty_assistants(user, model):
    with pytest.raises(ValidationError, match="import at most 20"):
        portable.import_all([exported(name=f"A{n}") for n in range(21)], user)
