"""Deploys that lose nothing: SIGTERM to a real Daphne process while an answer streams.

Each server is a real subprocess (tests/servers.py) answering from the session's
simulator over HTTP at a slow pace; the signal is the one `docker stop` sends.
"""

from __future__ import annotations

import asyncio
import re
import signal

import httpx
import pytest
from django.db import connections
from websockets.exceptions import ConnectionClosed

from conversations.models import Message, RunningAnswer
from conversations.pipeline.shutdown import FINAL_WRITES_SECONDS
from tests.servers import PROJECT_DIR
from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    RECORDER_JS,
    STORY,
    STORY_ANSWER,
    latest_answer_id,
    send_message,
    sign_in,
    wait_for_status,
)
from tests.support.chat import final_answer
from tests.support.tabs import ANSWER, Tab, arun, session_id
from tests.support.turns import model_pk
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

SLOW = "sim-chat+fault=slow:8"  # about three seconds for the story
SLOWER = "sim-chat+fault=slow:2"  # about twelve


def listening(server) -> bool:
    """Whether `server` still accepts connections (SIGTERM's first step closes its port)."""
    try:
        httpx.get(f"{server.url}/healthz", timeout=5)
    except httpx.ConnectError:
        return False
    except httpx.TransportError:
        return True  # accepted but slow to answer: still listening
    return True


async def until_it_stops_listening(server) -> None:
    """Wait until the SIGTERM reached the server's loop: its listening socket is closed."""
    await asyncio.to_thread(
        wait_until, lambda: not listening(server), what="the listening socket's close"
    )


async def sigterm_mid_answer(server, session: str, model: int, *, also_send: bool = False):
    """Start the story, SIGTERM the server once its text streams, and read to the end.

    Return (answer id, its last frame, the frame the second tab got for a send during
    the drain or None, that tab's close code or None).
    """
    async with Tab(server, session) as tab, Tab(server, session) as other:
        await tab.send(action="send", conversation="", text=STORY, model=str(model))
        answer_id = int(ANSWER.search(await tab.until(ANSWER.search)).group(1))
        await tab.until(lambda frame: f"message-{answer_id}-" in frame and "status-" not in frame)
        server.process.send_signal(signal.SIGTERM)
        refusal = close_code = None
        if also_send:
            await until_it_stops_listening(server)
            await other.send(action="send", conversation="", text="Sent while draining")
            refusal = await other.until(lambda frame: "composer-error" in frame)
            try:
                await other.until(lambda frame: False, timeout=5)
            except ConnectionClosed as closed:
                close_code = closed.rcvd.code if closed.rcvd else None
        final = await tab.until(final_answer, timeout=30)
        return answer_id, final, refusal, close_code


def test_sigterm_lets_a_streaming_answer_finish_and_saves_it(servers, catalogue, make_user):
    server = servers()
    session = session_id(make_user("ming"))

    answer_id, final, _, _ = arun(sigterm_mid_answer(server, session, model_pk(SLOW)))

    assert ANSWER.search(final).group(2) == "complete"
    assert server.process.wait(timeout=30) == 0
    answer = Message.objects.get(pk=answer_id)
    assert (answer.status, answer.text) == ("complete", STORY_ANSWER)


def test_sigterm_after_the_grace_saves_the_answer_interrupted_at_once(
    servers, catalogue, make_user
):
    server = servers(SHUTDOWN_GRACE_SECONDS="1")
    session = session_id(make_user("ming"))

    answer_id, final, _, _ = arun(sigterm_mid_answer(server, session, model_pk(SLOWER)))

    # Said by the stopping process itself (not by a later recovery), before the story ends.
    assert ANSWER.search(final).group(2) == "interrupted"
    assert server.process.wait(timeout=15) == 0
    answer = Message.objects.get(pk=answer_id)
    assert (answer.status, answer.error_code) == ("interrupted", "interrupted")
    assert answer.text and STORY_ANSWER.startswith(answer.text) and answer.text != STORY_ANSWER
    assert not RunningAnswer.objects.filter(pk=answer_id).exists()


def test_a_send_during_the_drain_is_told_the_server_is_restarting(servers, catalogue, make_user):
    server = servers()
    session = session_id(make_user("ming"))

    _, final, refusal, close_code = arun(
        sigterm_mid_answer(server, session, model_pk(SLOW), also_send=True)
    )

    assert "The server is restarting; retrying…" in refusal and 'data-retry="1"' in refusal
    assert close_code == 4503  # the page reconnects, to another process, and sends again
    assert ANSWER.search(final).group(2) == "complete"
    assert not Message.objects.filter(text="Sent while draining").exists()


def test_a_draining_server_takes_no_new_connections(servers, catalogue, make_user):
    server = servers()
    session, slow = session_id(make_user("ming")), model_pk(SLOW)

    async def drain_and_probe() -> bool:
        async with Tab(server, session) as tab:
            await tab.send(action="send", conversation="", text=STORY, model=str(slow))
            await tab.until(ANSWER.search)
            server.process.send_signal(signal.SIGTERM)
            await until_it_stops_listening(server)
            return server.process.poll() is None  # draining: the story takes ~3 s

    # The load balancer's next connection goes to a process that is not stopping: new
    # connections are refused while this one's answer still streams.
    assert arun(drain_and_probe())
    assert server.process.wait(timeout=30) == 0
    wait_until(lambda: not Message.objects.filter(status="streaming").exists(), what="the end")


@pytest.mark.browser
def test_the_page_sends_again_once_it_reaches_a_server_that_is_not_stopping(
    servers, catalogue, make_user, monkeypatch
):
    if not CHROMIUM:
        pytest.skip("no Chromium on PATH (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    session, slow = session_id(make_user("ming")), model_pk(SLOW)
    stopping = servers()
    port = int(stopping.url.rsplit(":", 1)[1])

    async def slow_answer_then_sigterm() -> None:
        async with Tab(stopping, session) as tab:
            await tab.send(action="send", conversation="", text=STORY, model=str(slow))
            await tab.until(ANSWER.search)
            stopping.process.send_signal(signal.SIGTERM)
            await until_it_stops_listening(stopping)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.set_default_timeout(10_000)
        context.add_init_script(RECORDER_JS)
        page = context.new_page()
        sign_in(page, stopping.url, "ming", PASSWORD)
        arun(slow_answer_then_sigterm())

        send_message(page, "Hello after the restart")
        page.get_by_text("The server is restarting; retrying…").wait_for()
        assert page.locator("#composer-text").input_value() == "Hello after the restart"
        assert stopping.process.wait(timeout=30) == 0
        servers(port=port)  # the next process, where the load balancer sends the page

        answer = latest_answer_id(page, timeout=30_000)
        wait_for_status(page, answer, "complete")
        assert page.locator("#composer-text").input_value() == ""
        assert page.locator("#composer-error").inner_text() == ""
        connections.close_all()
        context.close()
        browser.close()
    assert Message.objects.filter(text="Hello after the restart").count() == 1


def test_the_container_gets_longer_than_the_grace_before_it_is_killed():
    compose = (PROJECT_DIR / "docker-compose.yml").read_text()
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text()
    stop_timeout = int(re.search(r"stop_grace_period: (\d+)s", compose).group(1))
    grace = int(re.search(r"SHUTDOWN_GRACE_SECONDS:-(\d+)", compose).group(1))

    assert "STOPSIGNAL SIGTERM" in dockerfile and f"SHUTDOWN_GRACE_SECONDS={grace}" in dockerfile
    assert stop_timeout >= grace + FINAL_WRITES_SECONDS
