"""Keep the gateway key out of every log line, whoever logs it.

The gateway client already redacts what the gateway says (conversations/gateway/
errors.py), but a key can reach a log by other paths: a tool's exception, a database
error quoting a row, a traceback's repr of a settings value, a library's debug line.
This filter runs on the one handler every logger writes to and applies the same
`redact` (the configured key itself, whatever its format, and anything shaped like an
OpenAI key) to the finished message and to any traceback or stack.
"""

from __future__ import annotations

import logging

from django.conf import settings

from conversations.gateway.errors import redact

__all__ = ["RedactSecrets"]


class RedactSecrets(logging.Filter):
    """Rewrite a record so that no secret survives formatting."""

    def filter(self, record: logging.LogRecord) -> bool:
        key = getattr(settings, "OPENAI_API_KEY", "") or None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, key)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, key)
        record.msg, record.args = redact(record.getMessage(), key), None
        return True
