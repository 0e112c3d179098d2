"""The everyday send in three statements of hand-written SQL (issue #19).

`starts.prepare_send` goes through the ORM: ten statements and 6 to 12 ms of CPU, most
of it spent building SQL, on the one core a process has. Nearly every send is one case:
a question without attachments, on a model the page names, by an active user whose quota
counters this process knows and whose quota has room for the whole ask. This module
starts that case in three statements:

1. lock the user's turn gate and read its log of recent starts;
2. read the conversation (locked on PostgreSQL; SQLite's writer holds the database),
   whether an answer streams in it, how many of the user's do, the model the page asked
   for, the conversation's messages, and the ids the new rows will take;
3. write the gate's log, the day's and the month's quota holds, the question, the
   answer, its running row and the conversation: on PostgreSQL one statement
   (data-modifying CTEs, one round trip); on SQLite the same parts one after another,
   in process.

The decisions are the ORM path's own functions (`admission`, `quotas`, `plans`,
`starts`); only the statements differ, and the whole test suite runs through here on
both databases. `Unsuited` hands a send back to the ORM path: before any statement when
the case does not apply (attachments, no model named, or the user's first turn in this
process or of the day, whose counter rows it has not read), and after the write when a
hold matched no row (the quota has no room for the whole ask, or a remembered counter
id went stale). This transaction is rolled back then, so the ORM path starts from where
the send began.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.utils import timezone

from conversations.models import (
    Conversation,
    Message,
    ModelChoice,
    QuotaCounter,
    RunningAnswer,
    TurnGate,
)
from conversations.models.running import ORPHAN_AFTER
from conversations.personal.instructions import custom_instructions
from conversations.pipeline import admission, assistance, attaching, plans, starts
from conversations.pipeline.admission import Refused
from conversations.pipeline.plans import TurnOptions
from conversations.rendering import stored
from conversations.usage import limits, quotas
from conversations.usage.periods import Window, current_windows

__all__ = ["Unsuited", "prepare_send", "quick_send"]


class Unsuited(Exception):
    """The ORM path must start this send (see the module's docstring)."""


# What the branch's messages are read with: the planned fields, in column order.
MESSAGE_FIELDS = tuple(
    field
    for field in Message._meta.concrete_fields
    if field.attname in {"id", "parent_id", *starts.PLANNED_FIELDS}
)
# The conversation and the model are read whole: the sending tab draws the first.
CONVERSATION_FIELDS = tuple(Conversation._meta.concrete_fields)
MODEL_FIELDS = tuple(ModelChoice._meta.concrete_fields)


def prepare_send(
    *,
    user,
    conversation_id: int | None,
    text: str,
    model_id: int | None,
    instructions: str | None,
    worker_channel: str,
    options: TurnOptions = TurnOptions(),  # noqa: B008 - frozen, so sharing it is safe
) -> starts.SendResult:
    """Check the input, save the user's message and an empty answer, and plan the request:
    here when the send suits, else through `starts.prepare_send`."""
    text = admission.checked_text(text, images=bool(options.attachment_ids))
    if instructions is not None:
        instructions = admission.checked_instructions(instructions)
    send = {
        "user": user,
        "conversation_id": conversation_id,
        "text": text,
        "model_id": model_id,
        "instructions": instructions,
        "worker_channel": worker_channel,
        "options": options,
    }
    try:
        return quick_send(**send)
    except Unsuited:
        return starts.prepare_send(**send)


def quick_send(
    *,
    user,
    conversation_id: int | None,
    text: str,
    model_id: int | None,
    instructions: str | None,
    worker_channel: str,
    options: TurnOptions,
) -> starts.SendResult:
    """Start the send as `starts.prepare_send` would, or raise `Unsuited`.

    `text` and `instructions` come checked.
    """
    if options.attachment_ids or model_id is None or not user.is_active:
        raise Unsuited
    now = timezone.now()
    windows = current_windows(now)
    # Counter rows this process has not read yet mean the user's first turn here (or of
    # the day), whose gate and counters the ORM path creates: go there without a try.
    if quotas.known_counter_ids(user.pk, windows) is None:
        raise Unsuited
    policy = limits.policy_for(user)
    period_limits = policy.limits()
    caps = [period_limits[window.period].tokens for window in windows]
    created = conversation_id is None
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of the proxy `connection` costs
    with transaction.atomic(), db.cursor() as cursor:
        starts_log = locked_gate(cursor, user.pk)
        try:
            starts_log = quotas.counted_starts(starts_log, now.timestamp(), policy.turns_per_minute)
        except quotas.TurnRateExceeded as error:
            raise Refused(error.user_message) from None
        found = read_turn(cursor, user, conversation_id, model_id, now)
        admission.refuse_busy(answering=found.answering, running=found.running)
        conversation = found.conversation
        assistant = assistance.turn_assistant(user, conversation, options, created=created)
        options = assistance.locked_options(assistant, options)
        model, notices = assistance.turn_model(
            user, conversation, model_id, assistant, loaded=found.model
        )
        conversation.model = model
        changed = starts.apply_settings(conversation, instructions, options)
        branch = found.branch
        question = Message(
            pk=found.question_id,
            conversation=conversation,
            parent_id=branch[-1].pk if branch else None,
            role=Message.Role.USER,
            author_id=user.pk,
            text=text,
            **stored.columns(role=Message.Role.USER, text=text),
        )
        answer = starts.answer_to(question, model, options, assistant)
        answer.pk = found.answer_id
        asked = [*branch, question]
        personal = custom_instructions(user)
        # No attachments of its own; a replayed branch's earlier ones count in the hold.
        inputs = attaching.turn_inputs(asked, model, known={question.pk: []})
        estimate = plans.estimate_input(
            plans.turn_instructions(conversation, personal, assistant), asked, inputs
        )
        ask = quotas.whole_ask(user.pk, windows, caps, estimate, model.max_output_tokens)
        if ask is None:
            raise Unsuited
        reservation = ask.reservation(user.pk)
        running = RunningAnswer(
            message_id=answer.pk,
            owner_id=user.pk,
            worker_channel=worker_channel,
            quota_hold=admission.held(reservation, estimate),
        )
        conversation.current_leaf = answer
        conversation.updated_at = now
        parts = [
            Part(*update_gate(db, user.pk, starts_log)),
            *(
                Part(*hold(counter_id, user.pk, window, cap, ask.amount), is_hold=True)
                for counter_id, window, cap in zip(ask.counter_ids, windows, caps, strict=True)
            ),
            Part(*insert(db, conversation)) if created else None,
            Part(*insert(db, question)),
            Part(*insert(db, answer)),
            Part(*insert(db, running)),
            None if created else Part(*update_conversation(db, conversation, changed)),
        ]
        if not write(cursor, [part for part in parts if part is not None]):
            raise Unsuited
        plan = starts.planned(
            user,
            conversation,
            asked,
            answer,
            model,
            reservation,
            personal,
            inputs,
            assistant,
        )
    return starts.sent(
        plan, conversation, created, branch, question, answer, model, [], notices, {}
    )


# --- 1. The gate ----------------------------------------------------------------------


def locked_gate(cursor, user_id: int) -> list[float]:
    """Lock the user's turn gate and return its log; `Unsuited` before a first turn,
    whose gate the ORM path creates."""
    sql = f"SELECT recent_starts FROM {table(TurnGate)} WHERE user_id = %s"
    if cursor.db.features.has_select_for_update:
        sql += " FOR UPDATE"
    cursor.execute(sql, [user_id])
    row = cursor.fetchone()
    if row is None:
        raise Unsuited
    return json_value(row[0])


# --- 2. The read ----------------------------------------------------------------------


@dataclass
class Found:
    """What the read found: the conversation (new and unsaved, or the user's, locked),
    its branch on show, the model asked for, and what streams."""

    conversation: Conversation
    branch: list[Message]
    model: ModelChoice | None
    answering: bool
    running: int
    question_id: int
    answer_id: int


def read_turn(cursor, user, conversation_id: int | None, model_id: int, now) -> Found:
    """Read what the send decides on, in one statement; refuse a conversation that is
    not the user's."""
    running = [user.pk, Message.Status.STREAMING, now - ORPHAN_AFTER]
    # The user's live running answers, found by their owner in the running table
    # (`admission.running_answers`).
    live = (
        f"FROM {table(RunningAnswer)} r JOIN {table(Message)} rm ON rm.id = r.message_id"
        " WHERE r.owner_id = %s AND rm.status = %s AND r.heartbeat_at >= %s"
    )
    model_columns = columns("mc", MODEL_FIELDS)
    conversation_ids = next_ids(cursor.db, Conversation, 1) if conversation_id is None else "NULL"
    ids = (
        "WITH ids (question_id, answer_id, conversation_id) AS MATERIALIZED"
        f" (SELECT {next_ids(cursor.db, Message, 2)}, {conversation_ids})"
    )
    if conversation_id is None:
        cursor.execute(
            f"{ids} SELECT ids.*, 0, (SELECT COUNT(*) {live}), {model_columns}"
            f" FROM ids LEFT JOIN {table(ModelChoice)} mc ON mc.id = %s",
            [*running, model_id],
        )
        rows = cursor.fetchall()
        conversation = Conversation(pk=rows[0][2], owner=user)
        loaded = 5
    else:
        sql = (
            f"{ids} SELECT ids.*,"
            f" EXISTS (SELECT 1 {live} AND rm.conversation_id = c.id),"
            f" (SELECT COUNT(*) {live}), {model_columns}, {columns('c', CONVERSATION_FIELDS)},"
            f" {columns('m', MESSAGE_FIELDS)}"
            f" FROM ids CROSS JOIN {table(Conversation)} c"
            f" LEFT JOIN {table(ModelChoice)} mc ON mc.id = %s"
            f" LEFT JOIN {table(Message)} m ON m.conversation_id = c.id"
            " WHERE c.id = %s AND c.owner_id = %s AND NOT c.is_group"
            " ORDER BY m.created_at, m.id"
        )
        if cursor.db.features.has_select_for_update_of:
            sql += " FOR UPDATE OF c"
        cursor.execute(
            sql,
            [*running, *running, model_id, conversation_id, user.pk],
        )
        rows = cursor.fetchall()
        if not rows:
            # Not the user's, or a group's (a member's send, who pays, whether the model
            # answers at all): the ORM path decides, and refuses a stranger.
            raise Unsuited
        start = 5 + len(MODEL_FIELDS)
        loaded = start + len(CONVERSATION_FIELDS)
        values = rows[0][start:loaded]
        conversation = loaded_row(cursor.db, Conversation, CONVERSATION_FIELDS, values)
    first = rows[0]
    model = None
    if first[5] is not None:
        model = loaded_row(cursor.db, ModelChoice, MODEL_FIELDS, first[5 : 5 + len(MODEL_FIELDS)])
        if conversation.model_id == model.pk:
            conversation.model = model
    branch = []
    if conversation_id is not None:
        messages = [
            loaded_row(cursor.db, Message, MESSAGE_FIELDS, row[loaded:])
            for row in rows
            if row[loaded] is not None
        ]
        branch = conversation.branch_among(messages).messages
    return Found(
        conversation,
        branch,
        model,
        answering=bool(first[3]),
        running=first[4],
        question_id=first[0],
        answer_id=first[1],
    )


def next_ids(db, model: type[models.Model], count: int) -> str:
    """Return SQL for the next `count` ids of `model`'s table, drawn for this send.

    PostgreSQL draws them from the table's sequence; SQLite, whose writer holds the
    whole database until the commit, counts on from the table's AUTOINCREMENT high mark.
    """
    name = model._meta.db_table
    if db.vendor == "postgresql":
        draw = f"nextval(pg_get_serial_sequence('{name}', 'id'))"
        return ", ".join([draw] * count)
    high = f"(SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = '{name}')"
    return ", ".join(f"{high} + {n}" for n in range(1, count + 1))


def loaded_row(
    db, model: type[models.Model], fields: Sequence[models.Field], values
) -> models.Model:
    """Return an instance from the values of `fields` (in column order), as the ORM
    would have loaded it; the other fields load when first read."""
    converted = []
    for field, value in zip(fields, values, strict=True):
        if value is not None and isinstance(field, models.JSONField):
            value = field.from_db_value(value, None, db)
        elif isinstance(value, datetime.datetime) and timezone.is_naive(value):
            value = timezone.make_aware(value, datetime.UTC)  # SQLite keeps UTC, unmarked
        converted.append(value)
    return model.from_db(db.alias, [field.attname for field in fields], converted)


def json_value(value):
    """Return a JSON column's value: psycopg hands Django's JSON as text, as SQLite does."""
    return json.loads(value) if isinstance(value, str | bytes) else value


# --- 3. The write ---------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One statement of the write; a hold's must match its row for the send to stand."""

    sql: str
    params: list
    is_hold: bool = False


def write(cursor, parts: list[Part]) -> bool:
    """Run the write's parts; return False if a hold matched no row.

    On PostgreSQL they run as one statement, each part a CTE; each hold runs after the
    one before it (the day's before the month's, as settling goes, so two turns cannot
    deadlock on them) and only if it matched. On SQLite they run one after another.
    """
    if cursor.db.vendor != "postgresql":
        for part in parts:
            cursor.execute(part.sql, part.params)
            if part.is_hold and cursor.rowcount != 1:
                return False
        return True
    ctes = []
    params: list = []
    previous_hold = None
    for number, part in enumerate(parts):
        name = f"part{number}"
        sql = part.sql
        if part.is_hold:
            if previous_hold is not None:
                sql += f" AND EXISTS (SELECT 1 FROM {previous_hold})"
            sql += " RETURNING 1"
            previous_hold = name
        ctes.append(f"{name} AS ({sql})")
        params.extend(part.params)
    last = f"EXISTS (SELECT 1 FROM {previous_hold})" if previous_hold else "TRUE"
    cursor.execute(f"WITH {', '.join(ctes)} SELECT {last}", params)
    return bool(cursor.fetchone()[0])


def update_gate(db, user_id: int, starts_log: list[float]) -> tuple[str, list]:
    field = TurnGate._meta.get_field("recent_starts")
    return (
        f"UPDATE {table(TurnGate)} SET recent_starts = %s WHERE user_id = %s",
        [field.get_db_prep_save(starts_log, db), user_id],
    )


def hold(
    counter_id: int, user_id: int, window: Window, cap: int | None, amount: int
) -> tuple[str, list]:
    """Add `amount` to a counter's hold if its use and holds stay within `cap`
    (`quotas.hold_rows` in SQL); the row is named by its user, period and day too."""
    used, reserved, period = quote("used"), quote("reserved"), quote("period")
    sql = (
        f"UPDATE {table(QuotaCounter)} SET {reserved} = {reserved} + %s"
        f" WHERE id = %s AND user_id = %s AND {period} = %s AND starts_on = %s"
    )
    params = [amount, counter_id, user_id, window.period, window.starts_on]
    if cap is not None:
        sql += f" AND {used} + {reserved} <= %s"
        params.append(cap - amount)
    return sql, params


def insert(db, instance: models.Model) -> tuple[str, list]:
    """Return the INSERT of `instance`, id included, with what `save()` would store."""
    fields = instance._meta.concrete_fields
    values = [field.get_db_prep_save(field.pre_save(instance, add=True), db) for field in fields]
    return (
        f"INSERT INTO {table(type(instance))} ({columns(None, fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))})",
        values,
    )


def update_conversation(db, conversation: Conversation, changed: list[str]) -> tuple[str, list]:
    """Return the conversation's one UPDATE: its new leaf, activity time and model, and
    the `changed` fields the send set (`starts.apply_settings`)."""
    names = ["current_leaf", "updated_at", "model", *changed]
    fields = [Conversation._meta.get_field(name) for name in names]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    values = [field.get_db_prep_save(getattr(conversation, field.attname), db) for field in fields]
    return (
        f"UPDATE {table(Conversation)} SET {assignments} WHERE id = %s",
        [*values, conversation.pk],
    )


# --- SQL names ------------------------------------------------------------------------
# Quoted once per process (whose database is one vendor): a send names some hundred
# tables and columns.


@functools.cache
def quote(name: str) -> str:
    return connections[DEFAULT_DB_ALIAS].ops.quote_name(name)


def table(model: type[models.Model]) -> str:
    return quote(model._meta.db_table)


@functools.cache
def columns(alias: str | None, fields: tuple[models.Field, ...]) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + quote(field.column) for field in fields)
