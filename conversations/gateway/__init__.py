"""Client for OpenAI-compatible Responses API gateways, plus an offline simulator.

Imports nothing from Django: settings reach it through `ResponsesClient(...)`. Import
each name from the module that defines it: `client` (ResponsesClient, Timeouts,
Backoff), `request` (ResponseRequest and input items), `events` (the stream's typed
events), `response` (the finished Response and its output items), `errors` (the
GatewayError family), `classify`, `sse`, `network` (httpx over aiohttp), `transport`
(the in-process simulator's) and `simulator`.

    client = ResponsesClient(settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY)
    request = ResponseRequest(model="sim-chat", input=[user_message("Hi")], instructions=...)
    async for event in client.stream(request):
        ...
"""
