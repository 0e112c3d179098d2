"""`/healthz`: 200 only when the database and the channel layer both answer.

Load balancers and Docker's HEALTHCHECK take a process out of rotation on 503, so the
check must exercise the real dependencies, not merely prove that Python runs.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 3.0


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    connection.close()


async def check_channel_layer() -> None:
    """Send a message to a fresh channel and read it back."""
    layer = get_channel_layer()
    # The default prefix: channels-redis reads one prefix per process at a time, and a
    # probe on another prefix would wait behind the consumers' receive loop.
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "healthz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "healthz.ping":
        raise RuntimeError("the channel layer returned another message")


async def probe(name: str, check) -> str | None:
    """Run one check; return None when it passes, else a short reason."""
    try:
        await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return "timed out"
    except Exception as error:
        logger.warning("health check %s failed: %s", name, error.__class__.__name__)
        return error.__class__.__name__
    return None


@login_not_required
@never_cache
@require_GET
async def healthz(request):
    checks = {
        "database": await probe("database", sync_to_async(check_database)),
        "channel_layer": await probe("channel_layer", check_channel_layer),
    }
    failed = {name: reason for name, reason in checks.items() if reason}
    body = {
        "status": "ok" if not failed else "unavailable",
        "checks": {name: reason or "ok" for name, reason in checks.items()},
    }
    return JsonResponse(body, status=503 if failed else 200)
