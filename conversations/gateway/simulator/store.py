"""Remember stored responses, so `previous_response_id`, `GET`, `DELETE` and `cancel` work.

Each entry keeps the response object and the conversation up to and including its output
(as turns), so continuing from it needs no re-parsing. `store: false` responses are never
put here. The store is bounded, oldest first out, because the embedded simulator runs for
as long as the app does.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .conversation import Turn

__all__ = ["ResponseStore", "StoredResponse"]


@dataclass
class StoredResponse:
    response: dict[str, Any]
    context: list[Turn] = field(default_factory=list)
    task: asyncio.Task[None] | None = None  # the work behind a background response


class ResponseStore:
    """Stored responses by id, keeping at most `limit` of them."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, StoredResponse] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, response_id: object) -> bool:
        return response_id in self._entries

    def get(self, response_id: str) -> StoredResponse | None:
        """Return the stored response, or None."""
        return self._entries.get(response_id)

    def put(self, response_id: str, stored: StoredResponse) -> None:
        """Store (or replace) a response, forgetting the oldest one beyond the limit."""
        self._entries[response_id] = stored
        self._entries.move_to_end(response_id)
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def delete(self, response_id: str) -> bool:
        """Forget a response; return whether it existed."""
        return self._entries.pop(response_id, None) is not None

    def tasks(self) -> list[asyncio.Task[None]]:
        """Return the background tasks still running."""
        return [e.task for e in self._entries.values() if e.task is not None and not e.task.done()]
