"""The simulator's ASGI application: routes, auth, and the life of one response."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .catalogue import MODELS
from .chat_completions import build_chat_timeline
from .chat_params import parse_chat_params
from .conversation import Turn, check_function_outputs, count_turn_tokens, turns_from_output
from .faults import Faults, http_fault_error, split_model_name
from .http import (
    ApiError,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    run_until_disconnect,
    send_json,
    start_response,
    wait_for_disconnect,
)
from .params import COUNTING_FIELDS, Params, parse_params
from .plan import plan_response
from .relay import relay_error, relay_response_id, relay_timeline
from .store import ResponseStore, StoredResponse
from .timeline import Timeline, build_timeline
from .tokens import count_tokens
from .writer import Pace, write_stream

__all__ = ["RequestRecord", "Simulator"]

FAULT_HEADER = "X-Simulator-Fault"
PACE_HEADER = "X-Simulator-Pace"
_RESPONSE_PATH = re.compile(r"/v1/responses/(?P<id>[^/]+)(?P<cancel>/cancel)?")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A request the simulator received, for tests to inspect (never the Authorization)."""

    method: str
    path: str
    client: tuple[str, int] | None
    headers: dict[str, str]
    body: Any


class Simulator:
    """An OpenAI-compatible Responses API gateway, simulated. See the package docstring."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        tokens_per_second: float = 40.0,
        first_token_delay: float = 0.3,
        store_limit: int = 10_000,
        record_requests: int = 0,
        emission_log: str | None = None,
        relay: bool = False,
    ) -> None:
        self.api_key = api_key
        self.tokens_per_second = tokens_per_second
        self.first_token_delay = first_token_delay
        self.store = ResponseStore(store_limit)
        # The last `record_requests` requests, for tests; off by default to save memory.
        self.requests: deque[RequestRecord] = deque(maxlen=record_requests)
        self.fault_requests: Counter[str] = Counter()  # requests seen per fault spec
        self.active_streams = 0
        # Every request answered as a stateless relay would (relay.py); `+fault=relay` asks
        # for it per request.
        self.relay = relay
        # Benchmarks only: one JSON line per stream with when each text delta went out.
        self.emission_log = open(emission_log, "a", buffering=1) if emission_log else None  # noqa: SIM115

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            try:
                await self._route(scope, receive, send)
            except ApiError as error:
                await error.send(send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"].rstrip("/")
        body = await read_body(receive)
        self._record(scope, body)
        self._check_key(scope)
        if method == "POST" and path == "/v1/responses":
            await self._create(scope, receive, send, _json_body(body))
        elif method == "POST" and path == "/v1/chat/completions":
            await self._chat(scope, receive, send, _json_body(body))
        elif method == "POST" and path == "/v1/responses/input_tokens":
            await self._count_input_tokens(send, _json_body(body))
        elif method == "GET" and path == "/v1/models":
            await send_json(send, 200, _model_list())
        elif match := _RESPONSE_PATH.fullmatch(path):
            await self._stored_response(method, match["id"], bool(match["cancel"]), send)
        else:
            raise ApiError(404, f"Invalid URL ({method} {scope['path']})", param=None)

    def _check_key(self, scope: Scope) -> None:
        if self.api_key is None:
            return
        given = header(scope, "authorization") or ""
        if not given.startswith("Bearer "):
            raise ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if given.removeprefix("Bearer ") != self.api_key:
            raise http_fault_error("401", "", retry_after=0, masked_key=_masked_key(scope))

    async def _create(self, scope: Scope, receive: Receive, send: Send, body: Any) -> None:
        model_name, suffix = _split_model(body)
        if isinstance(body, dict) and suffix:
            body = {**body, "model": model_name}
        faults = self._faults(scope, suffix)
        relay = self.relay or faults.relay
        try:
            if await self._refused_or_hung(scope, receive, faults, model_name):
                return
            await self._respond(scope, receive, send, parse_params(body, model_name), faults, relay)
        except ApiError as error:
            raise relay_error(error) if relay else error from None

    async def _respond(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        params: Params,
        faults: Faults,
        relay: bool,
    ) -> None:
        """Answer a validated Responses request, as a stateless relay would if `relay`."""
        history = [] if relay else self._history(params.previous_response_id)
        check_function_outputs([*history, *params.turns])
        timeline = build_timeline(
            params,
            plan_response(params, history, tools_forever=faults.tools_forever),
            created_at=int(time.time()),
            input_tokens=_input_tokens(params, history),
            cached_tokens=count_turn_tokens(history),
            stream_fault=faults.stream_fault,
            response_id=relay_response_id() if relay else None,
        )
        if relay:
            timeline = relay_timeline(
                timeline,
                alias=params.model.name,
                previous_response_id=params.previous_response_id,
                late=faults.relay_late,
            )
        pace = self._pace(scope, faults, params)

        def remember() -> None:
            if params.store and timeline.final is not None and not relay:
                self._remember(timeline.final, params, history)

        if params.background:
            await self._start_background(send, params, history, timeline, pace)
        elif params.stream:
            await self._stream(send, receive, timeline, pace, remember)
        else:
            await self._reply_when_done(send, receive, timeline, pace, remember, faults)

    async def _chat(self, scope: Scope, receive: Receive, send: Send, body: Any) -> None:
        """Answer a Chat Completions request with the plan a Responses request would get."""
        model_name, suffix = _split_model(body)
        faults = self._faults(scope, suffix)
        if await self._refused_or_hung(scope, receive, faults, model_name):
            return
        chat = parse_chat_params(body, model_name)
        timeline = build_chat_timeline(
            chat,
            plan_response(chat.params, [], tools_forever=faults.tools_forever),
            created_at=int(time.time()),
            input_tokens=_input_tokens(chat.params, []),
            stream_fault=faults.stream_fault,
        )
        pace = self._pace(scope, faults, chat.params)
        if chat.params.stream:
            await self._stream(send, receive, timeline, pace, lambda: None)
        else:
            await self._reply_when_done(send, receive, timeline, pace, lambda: None, faults)

    async def _refused_or_hung(
        self, scope: Scope, receive: Receive, faults: Faults, model_name: str
    ) -> bool:
        """Apply the faults that come before any answer; return True if the client left."""
        if faults.hang:
            await wait_for_disconnect(receive)
            return True
        if faults.http_error:
            raise http_fault_error(
                faults.http_error,
                model_name,
                retry_after=faults.retry_after,
                masked_key=_masked_key(scope),
            )
        return False

    def _pace(self, scope: Scope, faults: Faults, params: Params) -> Pace:
        return Pace(
            tokens_per_second=self._tokens_per_second(scope, faults) * params.model.speed,
            first_token_delay=self.first_token_delay,
            delay_before_start=faults.delay or 0.0,
        )

    async def _stream(
        self,
        send: Send,
        receive: Receive,
        timeline: Timeline,
        pace: Pace,
        remember: Callable[[], None],
    ) -> None:
        await start_response(
            send, 200, "text/event-stream; charset=utf-8", [("cache-control", "no-cache")]
        )
        self.active_streams += 1
        started = time.time()
        sent_at: list[float] | None = [] if self.emission_log else None
        try:
            await run_until_disconnect(
                write_stream(send, timeline, pace, remember, sent_at), receive
            )
        finally:
            self.active_streams -= 1
            if self.emission_log is not None:
                line = {"id": timeline.response_id, "started": started, "text_sent_at": sent_at}
                self.emission_log.write(json.dumps(line) + "\n")

    async def _reply_when_done(
        self,
        send: Send,
        receive: Receive,
        timeline: Timeline,
        pace: Pace,
        remember: Callable[[], None],
        faults: Faults,
    ) -> None:
        if faults.stream_fault == "stall":
            await wait_for_disconnect(receive)
            return
        if not await run_until_disconnect(asyncio.sleep(pace.total_seconds(timeline)), receive):
            return
        if timeline.final is None or faults.stream_fault == "malformed":
            raise http_fault_error("500", "", retry_after=0, masked_key="")
        remember()
        await send_json(send, 200, timeline.final)

    async def _start_background(
        self, send: Send, params: Params, history: list[Turn], timeline: Timeline, pace: Pace
    ) -> None:
        """Answer at once with a queued response and finish it later, unless cancelled."""
        final = timeline.final
        if final is None:
            raise http_fault_error("500", "", retry_after=0, masked_key="")
        queued = {**final, "status": "queued", "output": [], "usage": None}
        queued.pop("completed_at", None)
        stored = StoredResponse(queued)
        self.store.put(timeline.response_id, stored)

        async def finish() -> None:
            await asyncio.sleep(pace.total_seconds(timeline))
            self._remember(final, params, history)

        stored.task = asyncio.create_task(finish())
        await send_json(send, 200, queued)

    def _remember(self, final: dict[str, Any], params: Params, history: list[Turn]) -> None:
        context = [*history, *params.turns, *turns_from_output(final["output"])]
        existing = self.store.get(final["id"])
        if existing is not None and existing.response.get("status") == "cancelled":
            return
        self.store.put(final["id"], StoredResponse(final, context))

    def _history(self, previous_response_id: str | None) -> list[Turn]:
        if previous_response_id is None:
            return []
        stored = self.store.get(previous_response_id)
        if stored is None:
            raise ApiError(
                400,
                f"Previous response with id '{previous_response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return stored.context

    async def _count_input_tokens(self, send: Send, body: Any) -> None:
        model = body.get("model") if isinstance(body, dict) else None
        model_name = split_model_name(model)[0] if isinstance(model, str) else ""
        if isinstance(body, dict):
            body = {**body, "model": model_name}
        params = parse_params(body, model_name, allowed_fields=COUNTING_FIELDS)
        history = self._history(params.previous_response_id)
        count = _input_tokens(params, history)
        await send_json(send, 200, {"object": "response.input_tokens", "input_tokens": count})

    async def _stored_response(
        self, method: str, response_id: str, cancel: bool, send: Send
    ) -> None:
        stored = self.store.get(response_id)
        if stored is None:
            raise ApiError(404, f"Response with id '{response_id}' not found.")
        if cancel and method == "POST":
            await send_json(send, 200, self._cancel(stored))
        elif method == "GET" and not cancel:
            await send_json(send, 200, stored.response)
        elif method == "DELETE" and not cancel:
            self.store.delete(response_id)
            await send_json(
                send, 200, {"id": response_id, "object": "response.deleted", "deleted": True}
            )
        else:
            raise ApiError(405, f"Method {method} is not allowed here.")

    def _cancel(self, stored: StoredResponse) -> dict[str, Any]:
        status = stored.response.get("status")
        if not stored.response.get("background"):
            raise ApiError(400, "Only responses created with background=true can be cancelled.")
        if status in ("queued", "in_progress"):
            if stored.task is not None:
                stored.task.cancel()
            stored.response = {**stored.response, "status": "cancelled"}
        elif status != "cancelled":
            raise ApiError(400, f"Cannot cancel a response with status '{status}'.")
        return stored.response

    def _faults(self, scope: Scope, suffix: str) -> Faults:
        faults = Faults.parse(suffix, source="model").combined(
            Faults.parse(header(scope, FAULT_HEADER) or "")
        )
        if not faults.spec:
            return faults
        self.fault_requests[faults.spec] += 1
        if faults.times is not None and self.fault_requests[faults.spec] > faults.times:
            return Faults()
        return faults

    def _tokens_per_second(self, scope: Scope, faults: Faults) -> float:
        given = header(scope, PACE_HEADER)
        if given is None:
            return faults.pace if faults.pace is not None else self.tokens_per_second
        try:
            pace = float(given)
        except ValueError:
            pace = -1.0
        if not pace >= 0:
            raise ApiError(
                400,
                f"Invalid {PACE_HEADER}: expected tokens per second, got '{given}'.",
                param=PACE_HEADER,
            )
        return pace

    def _record(self, scope: Scope, body: bytes) -> None:
        headers = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", [])
            if key.lower() != b"authorization"
        }
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        client = scope.get("client")
        self.requests.append(
            RequestRecord(
                scope["method"], scope["path"], tuple(client) if client else None, headers, parsed
            )
        )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self.store.tasks():
                    task.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _split_model(body: Any) -> tuple[str, str]:
    """Return the model name and the fault spec of its `+fault=` suffix ("" if none)."""
    model = body.get("model") if isinstance(body, dict) else None
    return split_model_name(model) if isinstance(model, str) else ("", "")


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)",
        ) from None


def _input_tokens(params: Params, history: list[Turn]) -> int:
    """Return the input tokens: instructions, earlier turns and the new input."""
    instructions = count_tokens(params.instructions) if params.instructions else 0
    return instructions + count_turn_tokens([*history, *params.turns])


def _masked_key(scope: Scope) -> str:
    """Return the given key the way real gateways echo it: mostly hidden."""
    key = (header(scope, "authorization") or "").removeprefix("Bearer ").strip()
    if len(key) <= 8:
        return "*" * len(key)
    return f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}"


def _model_list() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": model.name, "object": "model", "created": 1_750_000_000, "owned_by": "simulator"}
            for model in MODELS
        ],
    }
