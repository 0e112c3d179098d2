"""In-process measurements: page server time and queries, live Markdown CPU.

    python -m bench.inprocess pages <messages> <conversations>
    python -m bench.inprocess markdown
    python -m bench.inprocess turnstarts <sends>

`pages` builds its data in whatever DATABASE_URL names (the backend's bench database)
and uses Django's test client, counting queries with connection.execute_wrapper.
`markdown` needs no database. `turnstarts` times the CPU (and the wall time, database
included) of a send on a conversation of three turns through the three-statement path
(`pipeline.quicksend`) and through the ORM path (`starts.prepare_send`), and counts
their statements, in DATABASE_URL's database.
Each prints one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from functools import partial

REPEATS = 7
CODE_ANSWER = (
    "## Python example: Sort numbers report\n\nHere's a short Python example:\n\n"
    "- `sort_numbers_report` takes some items and returns a result.\n"
    "- It has no dependencies, so you can paste it anywhere.\n"
    "- Run the file to see it print the result.\n\n```python\n"
    "def sort_numbers_report(items):\n    results = []\n    for item in items:\n"
    "        results.append(item)\n    return results\n```\n\nAdapt the body to your own data."
)


def timed(function, repeats: int = REPEATS) -> tuple[float, list[float]]:
    """Return the median wall time of `function()` after one warm-up, and all times."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def pages(message_count: int, conversation_count: int) -> dict:
    os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatweb.settings")
    import django

    django.setup()
    from django.conf import settings

    # Daphne-less: no collectstatic manifest here, and static URLs are not what we time.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.test import Client
    from django.utils import timezone

    from conversations.models import Conversation, Message, ModelChoice

    users = get_user_model()
    model = ModelChoice.objects.default()
    reader = users.objects.create(username="bench-pages-reader")
    heavy = users.objects.create(username="bench-pages-sidebar")
    light = users.objects.create(username="bench-pages-light")

    def thread(owner, length: int) -> Conversation:
        conversation = Conversation.objects.create(owner=owner, title="Long", model=model)
        parent = None
        now = timezone.now()
        with transaction.atomic():
            for index in range(length):
                assistant = index % 2 == 1
                parent = Message.objects.create(
                    conversation=conversation,
                    parent=parent,
                    role="assistant" if assistant else "user",
                    text=CODE_ANSWER if assistant else f"Question {index}: sort these numbers?",
                    model_name="sim-chat" if assistant else "",
                    created_at=now + timezone.timedelta(milliseconds=index),
                )
        conversation.current_leaf = parent
        conversation.save()
        return conversation

    long_thread = thread(reader, message_count)
    short_thread = thread(reader, 10)
    now = timezone.now()
    Conversation.objects.bulk_create(
        Conversation(
            owner=heavy,
            title=f"Chat {index}",
            model=model,
            updated_at=now - timezone.timedelta(minutes=index),
        )
        for index in range(conversation_count)
    )
    Conversation.objects.bulk_create(
        Conversation(owner=light, title=f"Chat {index}", model=model) for index in range(10)
    )

    def measure(user, path: str) -> dict:
        client = Client()
        client.force_login(user)
        status = client.get(path).status_code
        queries = []
        with connection.execute_wrapper(
            lambda run, sql, *rest: queries.append(sql) or run(sql, *rest)
        ):
            client.get(path)
        median, times = timed(lambda: client.get(path))
        return {
            "path": path,
            "status": status,
            "ms": median * 1000,
            "ms_all": [t * 1000 for t in times],
            "queries": len(queries),
        }

    return {
        "conversation_long": measure(reader, f"/c/{long_thread.pk}/"),
        "conversation_short": measure(reader, f"/c/{short_thread.pk}/"),
        "sidebar_heavy": measure(heavy, "/"),
        "sidebar_light": measure(light, "/"),
        "sidebar_heavy_partial": measure(heavy, "/sidebar/"),
        "messages": message_count,
        "conversations": conversation_count,
    }


def markdown_document(size: int = 20_000) -> str:
    """Return ~`size` characters of typical answer Markdown: prose, lists, code, tables."""
    section = (
        "## Step {n}: sorting the report\n\n"
        "The numbers arrive unsorted, so we **sort** them first and then *group* them by "
        "range. This keeps the report stable, and `sorted()` is fast enough here.\n\n"
        "- Read the input file line by line.\n- Convert each value with `int()`.\n"
        "- Skip blank lines and [log](https://example.com/log) the rest.\n\n"
        "```python\ndef sort_numbers_{n}(items):\n    values = [int(v) for v in items if v]\n"
        "    return sorted(values)[:{n}]\n\n\nprint(sort_numbers_{n}(['3', '1', '2']))\n```\n\n"
        "| range | count | share |\n|---|---|---|\n| 0-9 | 12 | 40% |\n| 10-99 | 18 | 60% |\n\n"
    )
    parts, n = [], 1
    while sum(map(len, parts)) < size:
        parts.append(section.format(n=n))
        n += 1
    return "".join(parts)[:size]


def markdown() -> dict:
    from conversations.rendering.highlight import highlight
    from conversations.rendering.markdown import render_markdown
    from conversations.rendering.streaming import StreamingMarkdown

    text = markdown_document()
    deltas = [text[i : i + 4] for i in range(0, len(text), 4)]

    def once() -> None:
        render_markdown(text)

    def streaming(per_flush: int, final: bool):
        def run() -> None:
            renderer = StreamingMarkdown()
            for i in range(0, len(deltas), per_flush):
                for delta in deltas[i : i + per_flush]:
                    renderer.append(delta)
                renderer.flush()
            if final:
                render_markdown(renderer.text)

        return run

    def cpu(function) -> float:
        function()
        samples = []
        for _ in range(5):
            # Each run renders the answer cold, as the first view of a new answer does:
            # without this, repeats would find every code block already highlighted.
            highlight.cache_clear()
            start = time.process_time()
            function()
            samples.append(time.process_time() - start)
        return statistics.median(samples)

    once_cpu = cpu(once)
    # 30 tokens/s of ~4 characters, flushed every 50 ms: ~1.5 deltas a flush. We feed 2.
    stream_cpu = cpu(streaming(2, final=False))
    stream_final_cpu = cpu(streaming(2, final=True))
    per_delta_cpu = cpu(streaming(1, final=False))
    return {
        "chars": len(text),
        "deltas": len(deltas),
        "once_ms": once_cpu * 1000,
        "stream_ms": stream_cpu * 1000,
        "stream_with_final_ms": stream_final_cpu * 1000,
        "stream_every_delta_ms": per_delta_cpu * 1000,
        "ratio": stream_cpu / once_cpu,
        "ratio_with_final": stream_final_cpu / once_cpu,
    }


def counting(counted: list[str], execute, sql, *rest):
    """An execute wrapper that notes each statement in `counted`."""
    counted.append(sql)
    return execute(sql, *rest)


def turn_starts(sends: int) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatweb.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from conversations.gateway.response import Usage
    from conversations.models import ModelChoice, Quota, TurnGate
    from conversations.pipeline import endings, quicksend, starts
    from conversations.pipeline.answer import AnswerState, Outcome
    from conversations.pipeline.plans import TurnOptions

    user = get_user_model().objects.create(username=f"bench-turn-starts-{os.getpid()}")
    Quota.objects.create(user=user, tokens_per_day=10**12, tokens_per_month=10**13)
    model = ModelChoice.objects.default()

    def send(path, conversation_id, text):
        return path(
            user=user,
            conversation_id=conversation_id,
            text=text,
            model_id=model.pk,
            instructions=None,
            worker_channel="bench",
            options=TurnOptions(),
        )

    def finish(result) -> None:
        state = AnswerState(
            text=f"Answer to {result.plan.answer_id}.",
            response_id=f"resp_{result.plan.answer_id}",
            usage=Usage(12, 0, 30, 0, 42),
            outcome=Outcome("complete"),
        )
        endings.finish_answer(result.plan, state, previous_id="")
        # The rate limit is not what is measured here.
        TurnGate.objects.filter(user=user).update(recent_starts=[])

    def conversation() -> int:
        conversation_id = None
        for number in range(3):
            result = send(quicksend.prepare_send, conversation_id, f"Question {number}")
            finish(result)
            conversation_id = result.conversation.pk
        return conversation_id

    def measure(path) -> dict:
        spent, waited, statements = [], [], []
        for number in range(sends):
            conversation_id = conversation()
            counted: list[str] = []
            with connection.execute_wrapper(partial(counting, counted)):
                start, wall = time.process_time(), time.perf_counter()
                result = send(path, conversation_id, f"Bench question {number}")
                spent.append(time.process_time() - start)
                waited.append(time.perf_counter() - wall)
            statements.append(len(counted))
            finish(result)
        return {
            "cpu_ms_p50": statistics.median(spent) * 1000,
            "cpu_ms_mean": statistics.fmean(spent) * 1000,
            "wall_ms_p50": statistics.median(waited) * 1000,
            "statements": statistics.median(statements),
        }

    measure(quicksend.quick_send)  # warm both paths and the process's caches
    return {
        "quick": measure(quicksend.quick_send),
        "orm": measure(starts.prepare_send),
        "sends": sends,
        "vendor": connection.vendor,
    }


def main() -> None:
    if sys.argv[1] == "pages":
        result = pages(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "turnstarts":
        result = turn_starts(int(sys.argv[2]))
    else:
        result = markdown()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
