"""The version of the HTML the renderer makes, stored beside each message's HTML.

Messages keep the HTML they were rendered to (`Message.rendered_html`) with this number
(`Message.rendered_version`), as Zulip keeps `rendered_content_version`. Raise it when
the HTML for the same text changes: a new Markdown feature, different markup for code
blocks or citations, a stricter sanitiser. Pages then render each older message again
the first time they show it and store the result (see `rendering.stored`); nothing has
to be migrated.
"""

from __future__ import annotations

__all__ = ["RENDERER_VERSION"]

RENDERER_VERSION = 1
