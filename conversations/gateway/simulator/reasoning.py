"""Simulated reasoning: hidden token counts by effort, summaries, and an opaque blob.

Real reasoning models think in hidden tokens (billed as `reasoning_tokens`), may stream a
summary of that thinking, and can return it as `encrypted_content` for stateless replay.
Here the hidden size grows with effort, the summary has one part per effort level, and
the blob is base64 JSON behind the `gAAAAA` prefix real blobs have.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from .answers import snippet
from .tokens import count_tokens

__all__ = ["PlannedReasoning", "plan_reasoning"]

HIDDEN_TOKENS = {"low": 24, "medium": 96, "high": 320}
SUMMARY_PARTS = {"low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True, slots=True)
class PlannedReasoning:
    """The reasoning item a response starts with."""

    effort: str
    summary: tuple[str, ...]
    reasoning_tokens: int
    raw_text: str | None = None  # only for models that expose raw reasoning
    encrypted_content: str | None = None


def plan_reasoning(
    *,
    question: str,
    approach: str,
    effort: str,
    summary_setting: str | None,
    raw: bool,
    encrypted: bool,
) -> PlannedReasoning:
    """Return the reasoning for a question; `approach` says how the answer will go."""
    quoted = snippet(question) or "(no text)"
    steps = [
        f"**Understanding the question**\n\nThe user asks “{quoted}”. "
        "I need to work out what they want and answer directly.",
        f"**Planning the answer**\n\n{approach}",
        "**Checking the details**\n\nBefore answering I'll make sure the reply is accurate "
        "and no longer than it needs to be.",
    ]
    parts = SUMMARY_PARTS.get(effort, 2)
    if summary_setting is None:
        summary: tuple[str, ...] = ()
    elif summary_setting == "concise":
        summary = tuple(steps[:1])
    else:
        summary = tuple(steps[:parts])
    raw_text = None
    if raw:
        sentences = [f"The user asks “{quoted}”.", approach]
        sentences += ["Let me double-check that this is right and concise."] * parts
        raw_text = " ".join(sentences)
    reasoning_tokens = count_tokens(raw_text) if raw_text else HIDDEN_TOKENS.get(effort, 96)
    blob = None
    if encrypted:
        payload = json.dumps({"effort": effort, "summary": list(summary)}).encode()
        blob = "gAAAAA" + base64.urlsafe_b64encode(payload).decode()
    return PlannedReasoning(effort, summary, reasoning_tokens, raw_text, blob)
