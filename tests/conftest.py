"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from asgiref.sync import SyncToAsync
from channels.layers import channel_layers
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.utils import translation

from conversations.catalogue import access
from conversations.gateway.simulator import Simulator
from conversations.personal import instructions as personal
from conversations.pipeline import titles
from conversations.usage import limits, quotas
from tests.servers import ARTIFACTS, gateway_env, start_server
from tests.support.browser import PASSWORD
from tests.support.litellm import litellm_gateway  # noqa: F401  (registers the fixture)
from tests.support.simulator import (
    SIMULATOR_KEY,
    TEST_PACE,
    RequestLog,
    RunningSimulator,
    SimulatorForTest,
    serve,
)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Give every test a channel layer of its own.

    A layer remembers the event loop its receivers run on. A test whose sockets the
    server closed can leave a receiver behind on a loop that is gone, and the next
    test's receive() on the shared layer then fails ("bound to a different event loop").
    """
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def language_of_the_test_only():
    """Start and end every test in the default language.

    A request the test client makes in Chinese leaves Chinese active on the thread
    (LocaleMiddleware activates and nothing deactivates), so the next test's rendering
    would come out in Chinese.
    """
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def fresh_process_state():
    """Start every test with this process's per-user caches empty and a full title budget.

    Both live for the life of a process: a cached limit read in one test's rolled-back
    database would otherwise answer the next test's user of the same id, and a suite's
    worth of titles would drain the budget a later title test counts on.
    """
    limits.policies.forget()
    access.accesses.forget()
    personal.texts.forget()
    quotas.known_ids.clear()
    titles.title_requests = titles.TitleRequests()
    yield


@pytest.fixture
def make_user(db):
    """Return a factory for users with a known password."""

    def make(username: str = "ming", **extra):
        return get_user_model().objects.create_user(username, password=PASSWORD, **extra)

    return make


@pytest.fixture
def user(make_user):
    return make_user("ming")


@pytest.fixture
def other_user(make_user):
    return make_user("lena")


def pytest_collection_modifyitems(config, items):
    """Run browser tests last.

    Playwright's sync API keeps an event loop running in the main thread for as long as
    the session-wide browser lives, and pytest-asyncio cannot start its own loop beside
    it; putting the browser tests at the end keeps the two apart.
    """
    items.sort(key=lambda item: "tests/browser/" in str(item.path))


@pytest.fixture
def catalogue(db):
    """The simulator's models in the catalogue, as `make run` seeds them."""
    from django.core.management import call_command

    call_command("seed_catalogue", verbosity=0)


@pytest.fixture
def replaying(catalogue):
    """Every catalogue model replays the branch every turn (context mode "replay")."""
    from conversations.models import ModelChoice

    ModelChoice.objects.update(context_mode=ModelChoice.ContextMode.REPLAY)


@pytest.fixture
def gateway(simulator_server, settings, catalogue) -> SimulatorForTest:
    """Point the app at the session's simulator over real HTTP, with a real key.

    Its `requests` are the ones made during this test only.
    """
    settings.OPENAI_API_KEY = simulator_server.api_key
    settings.OPENAI_BASE_URL = simulator_server.base_url
    settings.GATEWAY_MAX_RETRIES = 0
    # The simulator accepts what OpenAI accepts (`store`, `stream_options`).
    settings.GATEWAY_OPENAI_OPTIONS = True
    return SimulatorForTest(
        simulator_server.base_url,
        simulator_server.app,
        simulator_server.api_key,
        RequestLog(simulator_server.app),
    )


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[RunningSimulator]:
    """Yield the session's simulator, which requires `SIMULATOR_KEY`."""
    app = Simulator(
        api_key=SIMULATOR_KEY, tokens_per_second=TEST_PACE, first_token_delay=0, record_requests=500
    )
    with serve(app) as base_url:
        yield RunningSimulator(base_url, app, SIMULATOR_KEY)


@pytest.fixture
def servers(simulator_server):
    """Start app processes (Daphne, on the session's simulator) on demand; stop them all.

    `servers(port=None, **env)` returns a tests/servers.py `Server`; each one still
    running at the end of the test is stopped, whatever the test did.
    """
    started = []
    ARTIFACTS.mkdir(exist_ok=True)

    def start(port: int | None = None, **extra_env: str):
        env = {**gateway_env(simulator_server), **extra_env}
        server = start_server(ARTIFACTS, extra_env=env, port=port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session", autouse=True)
def close_database_connections(django_db_setup, django_db_blocker) -> Iterator[None]:
    """Close every connection before the test database is dropped.

    Database threads hand their connections back to psycopg's pool, which keeps them
    open, and tests' `sync_to_async` calls leave one open in asgiref's shared thread;
    an open one would keep PostgreSQL from dropping the test database at the end.
    """
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()
    with django_db_blocker.unblock():
        for connection in connections.all(initialized_only=True):
            if connection.settings_dict["OPTIONS"].get("pool"):
                connection.close_pool()


def pytest_sessionfinish(session, exitstatus):
    """Keep what the attack tests observed, for docs/reliability.md."""
    from tests.support import attacks

    attacks.write()
