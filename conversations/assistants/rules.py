"""What makes an assistant's setup valid, wherever it is edited or imported.

The admin's form, the user's own assistant form and JSON import all check a setup with
these functions, so a rule said once holds everywhere. Each takes the value to check
and returns it cleaned, or raises `ValidationError` with a message for the person who
typed it, as a form's `clean_<field>` does.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from conversations.models import STARTER_PROMPT_CHARS, STARTER_PROMPTS, ModelChoice, Visibility
from conversations.tools import get_tool

__all__ = [
    "clean_dependent_fields",
    "clean_groups",
    "clean_model",
    "clean_reasoning_effort",
    "clean_starter_prompts",
    "clean_tools",
    "unknown_tools",
]


def clean_starter_prompts(prompts: Iterable[str]) -> list[str]:
    """Return the prompts stripped, blank ones dropped; refuse too many or too long."""
    kept = [prompt.strip() for prompt in prompts if prompt.strip()]
    if len(kept) > STARTER_PROMPTS:
        raise ValidationError(
            ngettext(
                "An assistant has at most %(limit)d starter prompt; this one has %(count)d.",
                "An assistant has at most %(limit)d starter prompts; this one has %(count)d.",
                STARTER_PROMPTS,
            )
            % {"limit": STARTER_PROMPTS, "count": len(kept)},
            code="too_many_starters",
        )
    for number, prompt in enumerate(kept, start=1):
        if len(prompt) > STARTER_PROMPT_CHARS:
            raise ValidationError(
                _(
                    "Starter prompt %(number)d is %(length)d characters long; the limit "
                    "is %(limit)d."
                )
                % {"number": number, "length": len(prompt), "limit": STARTER_PROMPT_CHARS},
                code="starter_too_long",
            )
    return kept


def clean_model(model: ModelChoice | None) -> ModelChoice | None:
    """Refuse a model the catalogue has disabled: no turn could use it.

    None is allowed: the assistant then uses each person's own default model.
    """
    if model is not None and not model.enabled:
        raise ValidationError(
            _("%(model)s is disabled in the model catalogue; choose another model or none.")
            % {"model": model},
            code="model_disabled",
        )
    return model


def clean_reasoning_effort(effort: str, model: ModelChoice | None) -> str:
    """Refuse an effort the chosen model does not accept; any effort goes without a model.

    Without a model the effort applies to each person's default model, and a turn
    drops it where that model does not accept it.
    """
    effort = effort.strip()
    if not effort or model is None:
        return effort
    if not model.supports_reasoning:
        raise ValidationError(
            _("%(model)s does not reason; leave the reasoning effort empty.") % {"model": model},
            code="effort_without_reasoning",
        )
    accepted = model.effort_choices
    if accepted and effort not in accepted:
        raise ValidationError(
            _("%(model)s accepts the reasoning efforts %(efforts)s, not “%(effort)s”.")
            % {"model": model, "efforts": ", ".join(accepted), "effort": effort},
            code="effort_not_accepted",
        )
    return effort


def clean_tools(tools: Iterable[str]) -> list[str]:
    """Refuse a tool name this site does not have; return the names once each, in order.

    Whether the model may call a tool is the catalogue's to say at each turn: a turn
    offers the tools both the assistant and its model have.
    """
    names = list(dict.fromkeys(tools))
    if unknown := unknown_tools(names):
        raise ValidationError(
            ngettext(
                "There is no tool called %(names)s on this site.",
                "There are no tools called %(names)s on this site.",
                len(unknown),
            )
            % {"names": ", ".join(f"“{name}”" for name in unknown)},
            code="unknown_tool",
        )
    return names


def unknown_tools(tools: Iterable[str]) -> list[str]:
    """Return the names among `tools` that name no tool of this site, once each."""
    return [name for name in dict.fromkeys(tools) if get_tool(name) is None]


def clean_groups(visibility: str, groups: Iterable) -> None:
    """Refuse "Given groups" without a group: nobody but the owner could use it."""
    if visibility == Visibility.GROUPS and not list(groups):
        raise ValidationError(
            _("Choose at least one group, or make it visible to just you or the whole team."),
            code="groups_missing",
        )


def clean_dependent_fields(cleaned: dict) -> dict[str, ValidationError]:
    """Check, in a form's cleaned data, what depends on two fields: the effort on the
    model, the groups on the visibility. Sets the cleaned effort; returns the errors by
    field, for the form to add."""
    errors = {}
    try:
        cleaned["reasoning_effort"] = clean_reasoning_effort(
            cleaned.get("reasoning_effort") or "", cleaned.get("model")
        )
    except ValidationError as error:
        errors["reasoning_effort"] = error
    try:
        clean_groups(cleaned.get("visibility", ""), cleaned.get("groups") or ())
    except ValidationError as error:
        errors["groups"] = error
    return errors
