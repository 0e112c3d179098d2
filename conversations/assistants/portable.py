"""An assistant as JSON, so a team can move it to another chatweb.

The JSON holds what makes the assistant answer as it does and nothing tied to this
site: no ids, no owner, no groups, no featured or enabled mark, and the model as its
upstream id, which names the same model on any gateway. Import trusts nothing in the
file: every field is checked for its type and size and by the same `rules` as the
forms, and an import is always a new private assistant of the importer's. What another
site cannot honour (a model its catalogue lacks, a tool it does not have) is dropped
with a warning rather than refused, so the rest still arrives.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from conversations.assistants import rules
from conversations.assistants.icons import IconError, store_icon
from conversations.assistants.library import record_version
from conversations.models import (
    ASSISTANT_INSTRUCTIONS_CHARS,
    Assistant,
    ModelChoice,
    Visibility,
)
from conversations.params import clean_text

__all__ = [
    "FORMAT",
    "LARGEST_ICON_BYTES",
    "MOST_ASSISTANTS",
    "VERSION",
    "Imported",
    "from_json",
    "icon_data_url",
    "import_all",
    "read_json",
    "to_json",
]

FORMAT = "chatweb.assistant"
VERSION = 1
# A stored icon is a small PNG; anything much bigger is not one of ours.
LARGEST_ICON_BYTES = 512 * 1024
ICON_PREFIX = "data:image/png;base64,"
# A list bigger than this is not a team's assistants but something else.
MOST_ASSISTANTS = 20

# The text fields: their largest lengths are the columns' (or the form's) own.
TEXT_FIELDS = {
    "name": Assistant._meta.get_field("name").max_length,
    "description": Assistant._meta.get_field("description").max_length,
    "emoji": Assistant._meta.get_field("emoji").max_length,
    "instructions": ASSISTANT_INSTRUCTIONS_CHARS,
    "model": ModelChoice._meta.get_field("upstream_id").max_length,
    "reasoning_effort": Assistant._meta.get_field("reasoning_effort").max_length,
}
FLAGS = ("web_search", "lock_options")
LISTS = ("tools", "starter_prompts")


@dataclass(frozen=True)
class Imported:
    """A newly imported assistant, and what of the file this site could not honour."""

    assistant: Assistant
    warnings: list[str] = field(default_factory=list)


def to_json(assistant: Assistant) -> dict[str, Any]:
    """Return the assistant as a JSON-ready dict: its setup, nothing tied to this site."""
    data: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "name": assistant.name,
        "description": assistant.description,
        "emoji": assistant.emoji,
        "instructions": assistant.instructions,
        "model": assistant.model.upstream_id if assistant.model else "",
        "reasoning_effort": assistant.reasoning_effort,
        "web_search": assistant.web_search,
        "tools": list(assistant.tools),
        "starter_prompts": list(assistant.starter_prompts),
        "lock_options": assistant.lock_options,
    }
    if assistant.icon:
        data["icon"] = icon_data_url(assistant)
    return data


def icon_data_url(assistant: Assistant) -> str:
    """Return the stored icon (a small PNG) as a data: URL."""
    with assistant.icon.open("rb") as icon:
        return ICON_PREFIX + base64.b64encode(icon.read()).decode("ascii")


def read_json(raw: bytes | str) -> Any:
    """Return the parsed JSON of an uploaded or pasted file, or say why it is not JSON."""
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as error:
        raise ValidationError(_("The file is not text in UTF-8."), code="not_utf8") from error
    if not text.strip():
        raise ValidationError(_("Choose a file or paste an assistant's JSON."), code="empty")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ValidationError(
            _("This is not valid JSON: %(error)s") % {"error": error}, code="not_json"
        ) from error


def import_all(data: Any, owner) -> list[Imported]:
    """Import one assistant, or each of a list of them (as the admin exports several).

    All or nothing: a list with one bad assistant imports none, and each problem says
    which assistant it is about.
    """
    if not isinstance(data, list):
        return [from_json(data, owner)]
    if not data:
        raise ValidationError(_("The list holds no assistants."), code="empty_list")
    if len(data) > MOST_ASSISTANTS:
        raise ValidationError(
            _("The list holds %(count)d assistants; import at most %(limit)d at once.")
            % {"count": len(data), "limit": MOST_ASSISTANTS},
            code="too_many",
        )
    imported: list[Imported] = []
    problems: list[str] = []
    try:
        with transaction.atomic():
            for number, item in enumerate(data, start=1):
                try:
                    imported.append(from_json(item, owner))
                except ValidationError as error:
                    problems += [
                        _("Assistant %(number)d: %(problem)s")
                        % {"number": number, "problem": problem}
                        for problem in error.messages
                    ]
            if problems:
                raise ValidationError(problems)
    except BaseException:
        # The rows rolled back; their icons' files are in no transaction.
        for done in imported:
            forget_icon(done.assistant)
        raise
    return imported


def from_json(data: Any, owner) -> Imported:
    """Create a private assistant of `owner`'s from an exported dict, checked throughout.

    Raises ValidationError listing every problem found; returns the assistant with
    warnings about what was left out (an unknown model or tool, an effort the model
    does not accept).
    """
    check_format(data)
    problems: list[str] = []
    warnings: list[str] = []
    texts = {key: text(data, key, limit, problems) for key, limit in TEXT_FIELDS.items()}
    flags = {key: flag(data, key, problems) for key in FLAGS}
    lists = {key: strings(data, key, problems) for key in LISTS}
    if isinstance(data.get("name"), str | None) and not texts["name"].strip():
        problems.append(_("The assistant has no name."))
    try:
        lists["starter_prompts"] = rules.clean_starter_prompts(lists["starter_prompts"])
    except ValidationError as error:
        problems += error.messages
    icon = icon_bytes(data, problems)
    if problems:
        raise ValidationError(problems)

    model = catalogue_model(texts["model"], warnings)
    assistant = Assistant(
        owner=owner,
        visibility=Visibility.PRIVATE,
        name=texts["name"].strip(),
        description=texts["description"].strip(),
        emoji=texts["emoji"].strip(),
        instructions=texts["instructions"],
        model=model,
        reasoning_effort=honoured_effort(texts["reasoning_effort"], model, warnings),
        web_search=flags["web_search"],
        tools=known_tools(lists["tools"], warnings),
        starter_prompts=lists["starter_prompts"],
        lock_options=flags["lock_options"],
    )
    if icon is not None:
        try:
            store_icon(assistant, ContentFile(icon, name="icon.png"))
        except IconError as error:
            raise ValidationError(
                _("The icon cannot be used: %(reason)s") % {"reason": error.user_message},
                code="bad_icon",
            ) from error
    try:
        record_version(assistant)
    except BaseException:
        # The row was not saved; the icon's file is in no transaction.
        forget_icon(assistant)
        raise
    return Imported(assistant, warnings)


def forget_icon(assistant: Assistant) -> None:
    """Delete the icon file of an assistant whose row is not kept."""
    if assistant.icon:
        assistant.icon.delete(save=False)


def check_format(data: Any) -> None:
    """Refuse anything but an exported assistant of a format version this site reads."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValidationError(
            _("This is not a chatweb assistant: its “format” should be “%(format)s”.")
            % {"format": FORMAT},
            code="not_an_assistant",
        )
    version = data.get("version")
    if type(version) is not int:
        raise ValidationError(
            _("The file's “version” should be a whole number."), code="bad_version"
        )
    if version != VERSION:
        raise ValidationError(
            _(
                "This assistant was exported in format version %(version)d; this site "
                "reads version %(supported)d."
            )
            % {"version": version, "supported": VERSION},
            code="unsupported_version",
        )


def text(data: dict, key: str, limit: int, problems: list[str]) -> str:
    """Return a text field ("" when absent or null), noting a wrong type or length."""
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(_("“%(field)s” should be text.") % {"field": key})
        return ""
    if len(value) > limit:
        problems.append(
            _("“%(field)s” is %(length)d characters long; the limit is %(limit)d.")
            % {"field": key, "length": len(value), "limit": limit}
        )
    return clean_text(value)


def flag(data: dict, key: str, problems: list[str]) -> bool:
    """Return a yes/no field (no when absent), noting anything but true or false."""
    value = data.get(key, False)
    if not isinstance(value, bool):
        problems.append(_("“%(field)s” should be true or false.") % {"field": key})
        return False
    return value


def strings(data: dict, key: str, problems: list[str]) -> list[str]:
    """Return a list-of-text field (empty when absent), noting anything else."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append(_("“%(field)s” should be a list of texts.") % {"field": key})
        return []
    return [clean_text(item) for item in value]


def icon_bytes(data: dict, problems: list[str]) -> bytes | None:
    """Return the icon's PNG bytes from its data: URL, or None when there is no icon."""
    value = data.get("icon")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith(ICON_PREFIX):
        problems.append(_("“icon” should be a PNG image as a data: URL."))
        return None
    encoded = value[len(ICON_PREFIX) :]
    # Checked before decoding, so a huge icon costs no memory beyond the text itself.
    if len(encoded) * 3 // 4 > LARGEST_ICON_BYTES:
        problems.append(
            _("The icon is larger than %(limit)d KB.") % {"limit": LARGEST_ICON_BYTES // 1024}
        )
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        problems.append(_("The icon's data: URL is not valid base64."))
        return None


def catalogue_model(upstream_id: str, warnings: list[str]) -> ModelChoice | None:
    """Return the enabled catalogue entry of `upstream_id`, or None with a warning."""
    if not upstream_id:
        return None
    model = ModelChoice.objects.filter(upstream_id=upstream_id).first()
    try:
        if model is not None:
            return rules.clean_model(model)
    except ValidationError:
        pass
    warnings.append(
        _(
            "The model “%(model)s” is not available on this site, so the assistant uses "
            "each person's default model. Choose a model for it if it needs one."
        )
        % {"model": upstream_id}
    )
    return None


def honoured_effort(effort: str, model: ModelChoice | None, warnings: list[str]) -> str:
    """Return the reasoning effort if the model accepts it, else "" with a warning."""
    try:
        return rules.clean_reasoning_effort(effort, model)
    except ValidationError as error:
        warnings.append(
            _("The reasoning effort was left out: %(reason)s") % {"reason": error.messages[0]}
        )
        return ""


def known_tools(tools: list[str], warnings: list[str]) -> list[str]:
    """Return the tools this site has, with a warning naming any it does not."""
    missing = rules.unknown_tools(tools)
    if not missing:
        return rules.clean_tools(tools)
    warnings.append(
        ngettext(
            "This site has no tool called %(names)s; it was left out.",
            "This site has no tools called %(names)s; they were left out.",
            len(missing),
        )
        % {"names": ", ".join(f"“{name}”" for name in missing)}
    )
    return [name for name in dict.fromkeys(tools) if name not in missing]
