"""Two Daphne processes on one Redis channel layer and one gateway: a stream started on
one process is watched, live, and stopped from a page connected to the other.

Each server is a real subprocess on the test database (PostgreSQL, or the SQLite file),
talking to the session's simulator over HTTP; Chromium opens one page per server, signed
in as the same user, as a load balancer without sticky sessions would spread them.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import pytest

from conversations.models import Message
from tests.servers import PROJECT_DIR, start_server
from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RECORDER_JS,
    STORY,
    STORY_ANSWER,
    add_model,
    body_text,
    folded,
    latest_answer_id,
    rendered_text,
    send_message,
    sign_in,
    streaming_states,
    wait_for_live_text,
    wait_for_socket,
    wait_for_status,
    wait_until_servers_are_quiet,
)

pytestmark = pytest.mark.browser

REDIS_DB = 13  # a database of its own, flushed first: other suites use 0
SLOW = "sim-chat+fault=slow:8"  # tokens per second: about three seconds for the story
PASSWORD = "pw-for-tests-123"


def redis_url() -> str:
    """REDIS_URL's server (or the local default) with this module's database number."""
    base = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return urlunsplit((base.scheme, base.netloc, f"/{REDIS_DB}", base.query, ""))


@pytest.fixture(scope="module")
def redis_layer() -> str:
    import redis

    url = redis_url()
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis is not reachable at {url} ({error}); scale-out needs it")
    client.flushdb()
    client.close()
    return url


@pytest.fixture(scope="module")
def servers(redis_layer, simulator_server, django_db_setup, django_db_blocker):
    """Two app processes sharing the test database, the Redis layer and the gateway."""
    env = {
        "REDIS_URL": redis_layer,
        "OPENAI_BASE_URL": simulator_server.base_url,
        "OPENAI_API_KEY": simulator_server.api_key,
        "GATEWAY_MAX_RETRIES": "0",
    }
    log_dir = PROJECT_DIR / "test-artifacts"
    log_dir.mkdir(exist_ok=True)
    started = []
    try:
        with django_db_blocker.unblock():
            for _ in range(2):
                started.append(start_server(log_dir, extra_env=env))
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="module")
def chromium(django_db_setup):
    """A browser for this module only (the test database exists before its event loop)."""
    if not CHROMIUM:
        pytest.skip("no Chromium on PATH (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def two_pages(chromium, servers, transactional_db, make_user, monkeypatch):
    """Page A on server A and page B on server B, one user signed in on both."""
    # Playwright keeps an event loop running in this thread; the ORM calls of the test
    # body share nothing with it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    add_model(SLOW, "Sim Chat (slow)", default=True)
    make_user("ming")
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    context.add_init_script(RECORDER_JS)
    page_a = context.new_page()
    sign_in(page_a, servers[0].url, "ming", PASSWORD)
    page_b = context.new_page()  # same cookies: the session is in the shared database
    yield page_a, page_b
    context.close()
    wait_until_servers_are_quiet()


def start_story_on_a(page_a) -> tuple[int, int]:
    """Ask for the story on page A; return (answer id, conversation id) once it streams."""
    send_message(page_a, STORY)
    answer = latest_answer_id(page_a)
    wait_for_live_text(page_a, answer)
    return answer, Message.objects.get(pk=answer).conversation_id


def open_on_b(page_b, servers, conversation: int) -> None:
    page_b.goto(f"{servers[1].url}/c/{conversation}/")
    wait_for_socket(page_b)


def test_answer_streams_live_to_a_page_on_the_other_process(two_pages, servers):
    page_a, page_b = two_pages
    answer, conversation = start_story_on_a(page_a)

    open_on_b(page_b, servers, conversation)
    wait_for_status(page_b, answer, "complete")
    wait_for_status(page_a, answer, "complete")

    saved = Message.objects.get(pk=answer)
    assert saved.status == "complete"
    final = rendered_text(page_b, saved.text)
    assert final == STORY_ANSWER
    assert body_text(page_a, answer) == body_text(page_b, answer) == final
    live_on_b = list(dict.fromkeys(state.live_text for state in streaming_states(page_b, answer)))
    for text in live_on_b:
        assert final.startswith(text), text
    partial = [text for text in live_on_b if text != final]
    assert len(partial) >= 2, f"page B saw only {live_on_b!r} while the answer streamed on A"
    assert page_b.locator("article.message-user .message-body").inner_text().strip() == STORY


def test_stop_on_the_other_process_stops_the_answer(two_pages, servers):
    page_a, page_b = two_pages
    answer, conversation = start_story_on_a(page_a)
    open_on_b(page_b, servers, conversation)
    wait_for_live_text(page_b, answer)

    page_b.locator(f"#message-{answer}").get_by_role("button", name="Stop").click()
    wait_for_status(page_b, answer, "cancelled")
    wait_for_status(page_a, answer, "cancelled")

    saved = Message.objects.get(pk=answer)
    assert saved.status == "cancelled"
    kept = folded(saved.text)
    assert kept and STORY_ANSWER.startswith(kept) and kept != STORY_ANSWER
    for page in (page_a, page_b):
        assert body_text(page, answer) == kept
        assert page.locator(f"#message-{answer} .badge").inner_text() == "stopped"
