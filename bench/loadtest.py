"""`make loadtest`: many simulated users chatting at once, then a check that nothing was lost.

`drive()` runs the websocket clients (one socket per user, the page's JSON frames, one
message after another); `verify()` compares what they sent and received with what the
database holds: every question saved, every answer complete and equal to the simulator's
scripted reply and to the last frame its client received, every answer charged with the
gateway's reported usage, and every quota counter settled. tests/pipeline/test_reliability.py runs
a small version in CI.

`main()` (`python -m bench.loadtest`) runs 200 users x 5 messages through two Daphne
processes. Everything runs on 127.0.0.1 and is thrown away at the end: a PostgreSQL
database of its own (chatweb_load, dropped), a redis-server of its own on a free port,
one standalone simulator at a fast pace and two app processes. Bounded in count (users x
messages) and time (LOADTEST_BUDGET seconds for the clients). The summary is printed and
written to test-artifacts/loadtest.json; the exit status is 0 only when nothing was lost.

    LOADTEST_USERS=200 LOADTEST_MESSAGES=5 python -m bench.loadtest
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import chat_socket, free_port, pg_admin, stop, wait_http

ANSWER = re.compile(r'<article id="message-(\d+)" class="message message-assistant status-(\w+)')
CONVERSATION = re.compile(r'id="turn-accepted" hidden data-conversation="(\d+)"')
COMPOSER_ERROR = re.compile(r'id="composer-error"[^>]*>\s*([^<]+)')
TURN_TIMEOUT = 60.0


def question(user_index: int, message_index: int) -> str:
    return f"Note {message_index + 1} from load user {user_index + 1}"


def expected_answer(text: str) -> str:
    """The simulator's scripted reply to a plain statement (simulator/answers.py)."""
    from conversations.gateway.simulator.answers import snippet

    return (
        f"Got it: “{snippet(text)}”. I'm Sim Chat, an offline simulator. "
        "What would you like to do next?"
    )


@dataclass
class Turn:
    text: str
    answer_id: int | None = None
    status: str = "no answer"
    final_frame: str = ""
    error: str = ""
    seconds: float = 0.0


@dataclass
class User:
    index: int
    session: str
    url: str  # the app's base URL this user's socket connects to
    turns: list[Turn] = field(default_factory=list)
    failure: str = ""


async def _chat(user: User, messages: int, model: int, deadline: float) -> None:
    ws_url = user.url.replace("http://", "ws://") + "/ws/chat/"
    async with chat_socket(ws_url, user.session, user.url) as ws:
        conversation = ""
        last_answer = 0
        for index in range(messages):
            turn = Turn(question(user.index, index))
            user.turns.append(turn)
            started = time.monotonic()
            await ws.send(
                json.dumps(
                    {
                        "action": "send",
                        "conversation": conversation,
                        "text": turn.text,
                        "model": str(model),
                    }
                )
            )
            limit = min(TURN_TIMEOUT, deadline - time.monotonic())
            async with asyncio.timeout(max(limit, 0.1)):
                while True:
                    frame = await ws.recv()
                    if found := CONVERSATION.search(frame):
                        conversation = found.group(1)
                    if refused := COMPOSER_ERROR.search(frame):
                        turn.status, turn.error = "refused", refused.group(1).strip()
                        break
                    for match in ANSWER.finditer(frame):
                        pk, status = int(match.group(1)), match.group(2)
                        # Ids only grow: the first answer newer than the last one is this
                        # turn's, whether it is still streaming or already final when the
                        # page first shows it.
                        if turn.answer_id is None and pk > last_answer:
                            turn.answer_id = last_answer = pk
                        if pk == turn.answer_id and status != "streaming":
                            turn.status, turn.final_frame = status, frame
                    if turn.final_frame:
                        break
            turn.seconds = time.monotonic() - started


async def drive(users: list[User], *, messages: int, model: int, budget: float) -> None:
    """Run every user's conversation at once, within `budget` seconds in all."""
    deadline = time.monotonic() + budget

    async def one(user: User) -> None:
        try:
            await _chat(user, messages, model, deadline)
        except Exception as error:  # recorded per user; verify() counts them
            user.failure = f"{error.__class__.__name__}: {error}"[:200]

    await asyncio.gather(*(one(user) for user in users))


def wait_for_titles(conversation_ids: set[int], timeout: float = 20.0) -> None:
    """Wait until every conversation's title request is charged (it follows the answer)."""
    from conversations.models import UsageRecord

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        titled = UsageRecord.objects.filter(
            purpose="title", conversation_id__in=conversation_ids
        ).count()
        if titled >= len(conversation_ids):
            return
        time.sleep(0.2)


def verify(users: list[User], user_ids: dict[int, int]) -> dict:
    """Compare the clients' view with the database; return counts of every problem.

    `user_ids` maps a load user's index to its database id.
    """
    from django.db.models import Sum

    from conversations.models import Message, QuotaCounter, UsageRecord
    from conversations.rendering.markdown import render_markdown
    from tests.support.chat import visible_text

    sent = sum(len(user.turns) for user in users)
    problems: dict[str, list] = {
        "client_failures": [],
        "lost_user_messages": [],
        "lost_answers": [],
        "not_complete": [],
        "wrong_text": [],
        "client_differs_from_db": [],
        "usage_mismatch": [],
        "quota_inconsistent": [],
    }
    answer_ids = [turn.answer_id for user in users for turn in user.turns if turn.answer_id]
    answers = {m.pk: m for m in Message.objects.filter(pk__in=answer_ids)}
    wait_for_titles({m.conversation_id for m in answers.values()})
    records = {}
    for record in UsageRecord.objects.filter(message_id__in=answer_ids, purpose="answer"):
        records.setdefault(record.message_id, []).append(record)
    for user in users:
        if user.failure:
            problems["client_failures"].append((user.index, user.failure))
        owner = user_ids[user.index]
        saved = list(
            Message.objects.filter(conversation__owner_id=owner, role="user")
            .order_by("pk")
            .values_list("text", flat=True)
        )
        for turn in user.turns:
            if turn.text not in saved:
                problems["lost_user_messages"].append((user.index, turn.text))
            answer = answers.get(turn.answer_id)
            if answer is None:
                in_db = list(
                    Message.objects.filter(
                        conversation__owner_id=owner, role="assistant", parent__text=turn.text
                    ).values_list("pk", "status")
                )
                problems["lost_answers"].append((user.index, turn.text, turn.status, in_db))
                continue
            if answer.status != "complete" or turn.status != "complete":
                problems["not_complete"].append((answer.pk, answer.status, turn.status))
            if answer.text != expected_answer(turn.text):
                problems["wrong_text"].append((answer.pk, answer.text))
            if visible_text(render_markdown(answer.text)) not in visible_text(turn.final_frame):
                problems["client_differs_from_db"].append(answer.pk)
            charged = records.get(answer.pk, [])
            if (
                len(charged) != 1
                or charged[0].estimated
                or answer.input_tokens is None
                or charged[0].input_tokens != answer.input_tokens
                or charged[0].output_tokens != answer.output_tokens
            ):
                problems["usage_mismatch"].append(answer.pk)
        # Titles are recorded but not counted against quotas.
        used = (
            UsageRecord.objects.filter(user_id=owner)
            .exclude(purpose=UsageRecord.Purpose.TITLE)
            .aggregate(total=Sum("total_tokens"))["total"]
            or 0
        )
        for reserved, counted in QuotaCounter.objects.filter(user_id=owner).values_list(
            "reserved", "used"
        ):
            if reserved != 0 or counted != used:
                problems["quota_inconsistent"].append((user.index, reserved, counted, used))
    token_sums = Message.objects.filter(pk__in=answer_ids).aggregate(
        input=Sum("input_tokens"), output=Sum("output_tokens")
    )
    recorded = UsageRecord.objects.filter(message_id__in=answer_ids, purpose="answer").aggregate(
        input=Sum("input_tokens"), output=Sum("output_tokens")
    )
    seconds = sorted(turn.seconds for user in users for turn in user.turns if turn.final_frame)
    return {
        "users": len(users),
        "messages_sent": sent,
        "answers_complete": sum(
            1 for turn in (t for u in users for t in u.turns) if turn.status == "complete"
        ),
        "message_tokens": token_sums,
        "usage_record_tokens": recorded,
        "turn_seconds_p50": round(seconds[len(seconds) // 2], 3) if seconds else None,
        "turn_seconds_max": round(seconds[-1], 3) if seconds else None,
        "problems": {name: len(found) for name, found in problems.items()},
        "examples": {name: found[:3] for name, found in problems.items() if found},
    }


def passed(checks: dict) -> bool:
    return (
        not any(checks["problems"].values())
        and checks["answers_complete"] == checks["messages_sent"]
        and checks["message_tokens"] == checks["usage_record_tokens"]
    )


PROJECT = Path(__file__).resolve().parent.parent
ARTIFACTS = PROJECT / "test-artifacts"
PY = sys.executable
PG_ADMIN_URL = os.environ.get("LOADTEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = "chatweb_load"
USERS = int(os.environ.get("LOADTEST_USERS", "200"))
MESSAGES = int(os.environ.get("LOADTEST_MESSAGES", "5"))
BUDGET = float(os.environ.get("LOADTEST_BUDGET", "240"))
PACE = "200"  # simulator tokens per second


def log(message: str) -> None:
    print(f"[loadtest {time.strftime('%H:%M:%S')}] {message}", flush=True)


def spawn(command: list[str], log_name: str, env: dict | None = None) -> subprocess.Popen:
    output = (ARTIFACTS / log_name).open("wb")
    return subprocess.Popen(command, cwd=PROJECT, env=env, stdout=output, stderr=subprocess.STDOUT)


def main() -> int:
    ARTIFACTS.mkdir(exist_ok=True)
    started: list[subprocess.Popen] = []
    data_dir = Path(tempfile.mkdtemp(prefix="chatweb-load-"))
    pg_admin(
        f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)",
        f"CREATE DATABASE {DATABASE}",
        url=PG_ADMIN_URL,
    )
    try:
        redis_port = free_port()
        redis = spawn(
            [
                shutil.which("redis-server") or "redis-server",
                *("--port", str(redis_port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            "loadtest-redis.log",
        )
        started.append(redis)
        api_key = "sk-load-" + secrets.token_hex(16)
        sim_port = free_port()
        simulator = spawn(
            [
                *(PY, "-m", "conversations.gateway.simulator", "--port", str(sim_port)),
                *("--pace", PACE, "--first-token-delay", "0", "--api-key", api_key),
            ],
            "loadtest-simulator.log",
        )
        started.append(simulator)
        sim_url = f"http://127.0.0.1:{sim_port}/v1"
        wait_http(simulator, f"{sim_url}/models", {"Authorization": f"Bearer {api_key}"})

        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "chatweb.settings",
                "DEBUG": "0",
                "SECRET_KEY": secrets.token_urlsafe(48),
                "DATA_DIR": str(data_dir),
                "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{DATABASE}",
                "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                "OPENAI_BASE_URL": sim_url,
                "OPENAI_API_KEY": api_key,
                "GATEWAY_MAX_RETRIES": "0",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "LOG_LEVEL": "WARNING",
            }
        )
        for command in (["migrate", "--noinput"], ["seed_catalogue"]):
            subprocess.run(
                [PY, "manage.py", *command], cwd=PROJECT, env=env, check=True, capture_output=True
            )
        seeded = json.loads(
            subprocess.run(
                [PY, "-m", "bench.seed", str(USERS)],
                cwd=PROJECT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        urls = []
        for _ in range(2):
            port = free_port()
            daphne = spawn(
                [
                    *(PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)),
                    *("--websocket_timeout", "-1", "chatweb.asgi:application"),
                ],
                f"loadtest-daphne-{port}.log",
                env,
            )
            started.append(daphne)
            urls.append(f"http://127.0.0.1:{port}")
            wait_http(daphne, f"{urls[-1]}/healthz")

        os.environ.update({key: env[key] for key in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY")})
        os.environ.update({key: env[key] for key in ("DATABASE_URL", "REDIS_URL", "DATA_DIR")})
        import django

        django.setup()
        from django.contrib.auth import get_user_model

        ids = dict(
            get_user_model()
            .objects.filter(username__startswith="bench")
            .order_by("username")
            .values_list("username", "pk")
        )
        users = [
            User(index, session, urls[index % 2])
            for index, session in enumerate(seeded["sessions"])
        ]
        user_ids = {index: ids[f"bench{index:05d}"] for index in range(len(users))}
        log(f"{len(users)} users x {MESSAGES} messages through {urls} (simulator {sim_url})")
        began = time.monotonic()
        asyncio.run(drive(users, messages=MESSAGES, model=seeded["model"], budget=BUDGET))
        elapsed = time.monotonic() - began
        checks = verify(users, user_ids)
        checks["client_seconds"] = round(elapsed, 1)
        ok = passed(checks)
        summary = (
            f"{len(users)} users x {MESSAGES} messages through two Daphne processes on "
            f"PostgreSQL + Redis in {elapsed:.1f} s: {checks['answers_complete']}/"
            f"{checks['messages_sent']} answers complete; "
            + ("nothing lost, usage and quotas consistent." if ok else "PROBLEMS found.")
        )
        result = {"summary": summary, "passed": ok, "checks": checks}
        (ARTIFACTS / "loadtest.json").write_text(json.dumps(result, indent=2, default=str))
        log(summary)
        print(json.dumps(checks, indent=2, default=str))
        return 0 if ok else 1
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        for process in reversed(started):
            stop(process)
        pg_admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", url=PG_ADMIN_URL)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
