"""Middleware for the suite's Daphne servers: forget cached content type ids per request.

A server process outlives many tests, and every transactional test's flush recreates
the content types; on PostgreSQL they come back with new ids (sequences are not reset).
Django caches the ids per process, so a server that cached them in an earlier test would
write an admin log entry pointing at a content type that no longer exists.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType


def fresh_content_types(get_response):
    def middleware(request):
        ContentType.objects.clear_cache()
        return get_response(request)

    return middleware
