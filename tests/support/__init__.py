"""Helpers shared by the tests; test modules import from here, never from each other.

- waiting: `wait_until` / `wait_until_async`, the one way to wait for a condition.
- simulator: the session's simulator on a real port, and `RequestLog`, one test's
  requests to it (the `gateway` fixture's `requests`).
- turns: whole turns without a socket (`ask`, and `finished`, which waits for an answer).
- direct_turns: turns written through `records` inside the test's transaction.
- chat: the chat websocket through the full ASGI stack, and reading its frames.
- tabs: a signed-in tab's websocket against a real server process.
- browser: Chromium pages against a real server.
- messages, usage: rows written as the app writes them (`say`, `record`).
- checks: `manage.py check` in a fresh process.
- image, fixed_gateway, litellm, attacks: test images, a scripted gateway, LiteLLM's
  proxy, and what the attack tests observed.
"""
