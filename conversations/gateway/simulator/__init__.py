"""An offline OpenAI-compatible Responses API gateway: a plain ASGI app, no Django.

It is the app's embedded default gateway and the tests' gateway. It speaks the protocol
of reference/responses-api.md: streaming and non-streaming `POST /v1/responses`,
`GET`/`DELETE /v1/responses/{id}`, `POST /v1/responses/{id}/cancel` (background
responses), `POST /v1/responses/input_tokens` and `GET /v1/models`; and, as the backend
behind a bridging gateway such as LiteLLM, `POST /v1/chat/completions` (same answers).
Images and files (`input_file`, the chat `file` part) are acknowledged by the models
that take them and refused by the others with a gateway's 400 (images.py, files.py).

Run it three ways:
- in-process: `ResponsesClient("http://simulator/v1",
  transport=StreamingASGITransport(Simulator()))`;
- standalone: `python -m conversations.gateway.simulator --port 8765`;
- in tests: the `simulator_server` fixture (a real port).

Pace: `Simulator(tokens_per_second=40, first_token_delay=0.3)`; one request can set its
own with the header `X-Simulator-Pace: <tokens per second>` (0 = no pause between tokens).

Fault modes, chosen per request by a model-name suffix and/or a header (combined):

    model: "sim-chat+fault=429"            header: X-Simulator-Fault: 429
    model: "sim-chat+fault=delay:2,failed"  header: X-Simulator-Fault: 503,times:1

Tokens (comma-separated; `name` or `name:argument`):
- `400` bad parameter, `401` bad key, `403` no access, `404` model not found,
  `429[:seconds]` rate limited with retry-after / retry-after-ms (default 1 s),
  `quota` (429 insufficient_quota), `500`, `502` (HTML body), `503`, `504` (text body);
- `delay[:seconds]` silence before the first event (default 1 s);
- `slow[:tokens_per_second]` slow stream (default 4);
- `failed` response.failed after some text; `error` nested error event (then
  response.failed); `error-flat` flat error event; `incomplete` response.incomplete
  (max_output_tokens) halfway through; `cut` stream ends with no terminal event;
  `malformed` a broken `data:` line after some text; `stall` stops sending after some
  text; `hang` sends nothing at all, not even headers;
- `relay` answer as a stateless relay to chat completions would: forget
  `previous_response_id` and echo another, ~430-character ids, string error codes
  (also `Simulator(relay=True)` for every request; see relay.py);
- `times:N` apply the faults only to the first N requests carrying this exact spec;
  `tag:<word>` changes nothing but makes a spec distinct (separate `times` counters).

Stream-only faults on a non-streaming request: `failed`/`error`/`error-flat` give a
response with status "failed", `incomplete` an incomplete one, `cut`/`malformed` a 500,
`stall` a hang. FAULTS.md holds the same list for readers outside the code.
"""

from __future__ import annotations

from .app import RequestRecord, Simulator
from .catalogue import MODELS, ModelSpec, find_model

__all__ = ["MODELS", "ModelSpec", "RequestRecord", "Simulator", "find_model"]
