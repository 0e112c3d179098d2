"""The model catalogue beside the gateway's model list: what seeding and the admin share.

A gateway's `GET /models` is the one place that says which model ids it serves, and it
says nothing else about them. So seeding adds what it lists with every capability off
(an admin turns on what the model can do), and the admin's check marks the entries it
no longer lists, so the composer can warn before a turn fails. What the app learned
from failed turns (a stateless gateway, rejected parameters, an unknown model) is kept
on each entry; `forget_lessons` clears it so the app tries again.
"""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import formats, timezone
from django.utils.translation import gettext

from conversations.catalogue.upstream import build_client
from conversations.gateway.errors import GatewayTimeoutError
from conversations.models import ModelChoice

__all__ = [
    "POSITION_STEP",
    "Seeded",
    "add_gateway_models",
    "add_models",
    "forget_lessons",
    "gateway_model_ids",
    "gateway_status",
    "id_problem",
    "mark_unlisted",
    "readable_label",
]

POSITION_STEP = 10  # gaps leave room to slot a model in between without renumbering
UPSTREAM_ID_LIMIT = ModelChoice._meta.get_field("upstream_id").max_length
LABEL_LIMIT = ModelChoice._meta.get_field("label").max_length
# A gateway that accepts the connection and then stalls must not hold a deploy or an
# admin page for the read timeout of a long answer, times every retry.
MODEL_LIST_TIMEOUT = 30.0
# A dash between two digits belongs to a number or a date ("3-5", "2024-07-18").
_WORD_DASH = re.compile(r"(?<!\d)-|-(?!\d)")


def gateway_model_ids() -> list[str]:
    """Return the model ids the gateway lists; raise GatewayError if it cannot say.

    A client of its own, closed afterwards: the per-loop client of `get_client` belongs
    to the event loop that streams answers, not to a management command or admin view.
    """
    return async_to_sync(_list_models)()


async def _list_models() -> list[str]:
    async with build_client() as client:
        try:
            return await asyncio.wait_for(client.list_models(), MODEL_LIST_TIMEOUT)
        except TimeoutError as error:
            raise GatewayTimeoutError(
                f"The gateway did not list its models within {MODEL_LIST_TIMEOUT:g} seconds."
            ) from error


def readable_label(model_id: str) -> str:
    """Return a label for a gateway model id: "openai/gpt-4.1-mini" becomes "GPT-4.1 mini".

    The provider prefix goes from the label only; the id is sent unchanged.
    """
    name = model_id.rsplit("/", 1)[-1].strip() or model_id
    if name.lower().startswith("gpt-"):
        number, _, rest = name[4:].partition("-")
        label = f"GPT-{number} {_WORD_DASH.sub(' ', rest)}".strip()
    else:
        label = _WORD_DASH.sub(" ", name).strip()
        label = label[:1].upper() + label[1:] if label[:1].isalpha() else label
    return label[:LABEL_LIMIT]


def id_problem(model_id: object) -> str | None:
    """Return why `model_id` cannot be a catalogue entry's upstream id, or None if it can."""
    if not isinstance(model_id, str) or not model_id.strip():
        return gettext("it is empty")
    if not model_id.isprintable():
        return gettext("it contains control characters")
    if model_id != model_id.strip():
        return gettext("it starts or ends with a space")
    if len(model_id) > UPSTREAM_ID_LIMIT:
        return gettext("it is longer than %(limit)d characters") % {"limit": UPSTREAM_ID_LIMIT}
    return None


@dataclass
class Seeded:
    """What a seeding run did: entries added, and ids it would not add, with why."""

    added: list[ModelChoice] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def add_models(entries: Iterable[tuple[str, dict]]) -> list[ModelChoice]:
    """Add the (upstream id, fields) entries the catalogue lacks; existing ones stay as edited.

    The first added entry becomes the default only when the catalogue was empty, so a
    deploy never moves a default an admin chose.
    """
    added = []
    with transaction.atomic():
        was_empty = not ModelChoice.objects.exists()
        for upstream_id, defaults in entries:
            model, is_new = ModelChoice.objects.get_or_create(
                upstream_id=upstream_id, defaults=defaults
            )
            if is_new:
                added.append(model)
        if was_empty and added:
            added[0].is_default = True
            added[0].save(update_fields=["is_default"])
    return added


def add_gateway_models(
    model_ids: Iterable[object], *, described: Mapping[str, dict] | None = None
) -> Seeded:
    """Add the gateway's models the catalogue lacks, after the others.

    The gateway's list says nothing about reasoning, tools or prices, so nothing is
    claimed: an admin turns on what a model can do. Only a model `described` already
    knows (the simulator's, when the gateway is a simulator) gets those fields, so
    what a real gateway does not list never enters the catalogue.
    """
    described = described or {}
    seeded = Seeded()
    usable: list[str] = []
    for model_id in model_ids:
        problem = id_problem(model_id)
        if problem is not None:
            seeded.skipped.append((_shown(model_id), problem))
        elif model_id not in usable:
            usable.append(model_id)
    present = set(ModelChoice.objects.values_list("upstream_id", flat=True))
    new_ids = [model_id for model_id in usable if model_id not in present]
    last = ModelChoice.objects.aggregate(last=Max("position"))["last"] or 0
    seeded.added = add_models(
        (
            model_id,
            {
                "label": readable_label(model_id),
                **described.get(model_id, {}),
                "position": last + index * POSITION_STEP,
            },
        )
        for index, model_id in enumerate(new_ids, start=1)
    )
    return seeded


def _shown(model_id: object) -> str:
    """Return an id as it can be printed safely: quoted, escapes visible, cut short."""
    shown = repr(model_id)
    return shown if len(shown) <= 80 else f"{shown[:77]}..."


def mark_unlisted(
    models: QuerySet[ModelChoice], listed: Collection[str], *, now: datetime.datetime
) -> list[ModelChoice]:
    """Mark `models` the gateway does not list as unknown to it, clear the listed ones.

    Return the unlisted entries. The evidence names the time of the check, so an admin
    reading it later knows how old it is.
    """
    checked = formats.date_format(timezone.localtime(now), "DATETIME_FORMAT")
    evidence = gettext("Not in the gateway's model list (checked %(time)s)") % {"time": checked}
    entries = list(models)
    missing = [model for model in entries if model.upstream_id not in listed]
    with transaction.atomic():
        ModelChoice.objects.filter(pk__in=[model.pk for model in missing]).update(
            unknown_to_gateway_at=now, unknown_to_gateway_evidence=evidence
        )
        ModelChoice.objects.filter(
            pk__in=[model.pk for model in entries if model.upstream_id in listed]
        ).update(unknown_to_gateway_at=None, unknown_to_gateway_evidence="")
    return missing


def forget_lessons(models: QuerySet[ModelChoice]) -> int:
    """Clear what the gateway taught the app about `models`, so turns try again.

    A stateless gateway may have gained a database, a rejected parameter may be
    accepted after an upgrade, a missing model may have been added; only trying again
    shows it. Return how many entries were reset.
    """
    return models.update(
        stateless_detected_at=None,
        stateless_evidence="",
        unsupported_params={},
        unknown_to_gateway_at=None,
        unknown_to_gateway_evidence="",
    )


def gateway_status(model: ModelChoice) -> list[str]:
    """Return short phrases for what the app learned about `model`, for the admin's list."""
    status = []
    if model.context_mode == ModelChoice.ContextMode.REPLAY:
        status.append(gettext("replays history"))
    elif model.replays_history:
        status.append(gettext("replays history (stateless gateway)"))
    if model.unsupported_params:
        params = ", ".join(sorted(model.unsupported_params))
        status.append(gettext("rejected: %(params)s") % {"params": params})
    if model.unknown_to_gateway_at:
        status.append(gettext("unknown to gateway"))
    return status
