"""Helpers shared by the orchestrator and the load clients: statistics and fragment parsing."""

from __future__ import annotations

import functools
import html
import re

TAIL_MARK = re.compile(r'<div id="message-(\d+)-tail" class="stream-tail" hx-swap-oob="true">')
APPENDED_MARK = re.compile(r'<div hx-swap-oob="beforeend:#message-(\d+)-blocks">')
SNAPSHOT_MARK = re.compile(
    r'<div id="message-(\d+)-body" class="message-body markdown" hx-swap-oob="true">'
    r'<div id="message-\1-blocks">'
)
ASSISTANT = re.compile(r'<article id="message-(\d+)" class="message message-assistant status-(\w+)')
CONVERSATION = re.compile(r'id="turn-accepted" hidden data-conversation="(\d+)"')
TAGS = re.compile(r"<[^>]*>")
SPACE = re.compile(r"\s+")

# The question every load client asks, numbered: the simulator answers it with 142 tokens
# of Markdown (heading, list, fenced Python code), about 4.7 s at 30 tokens/s. The number
# is one of the three words the simulator names the answer's function and heading after,
# so every turn gets an answer of its own (as users do: no render cache serves one answer
# from another's), and it has a fixed width, so every answer has the same tokens' lengths
# and the frames of any answer map back to tokens like the reference answer's.
QUESTION = "Write a python function to sort numbers for the report{number:06d}"
# How many questions one scenario may ask: each takes the next block of numbers.
QUESTIONS_PER_SCENARIO = 10_000


def question(number: int) -> str:
    """Return the load clients' question numbered `number` (six digits, for a fixed width)."""
    if not 0 <= number < 10**6:
        raise ValueError(f"question numbers have six digits, not {number}")
    return QUESTION.format(number=number)


def answer_text(reference: str, number: int) -> str:
    """Return the simulator's answer to question(number), given its answer to question(0)."""
    return reference.replace(f"report{0:06d}", f"report{number:06d}")


def percentile(values: list[float], q: float) -> float | None:
    """Return the q-th percentile (0-100) by linear interpolation, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def visible_chars(markup: str) -> int:
    """Return how many non-space characters of text `markup` shows."""
    return len(SPACE.sub("", html.unescape(TAGS.sub("", markup))))


def frame_text(frame: str) -> tuple[int | None, int | None, int | None]:
    """Return (answer id, visible chars appended, visible chars of the tail) of a delta frame.

    A delta frame carries newly finished blocks (appended once) and the open tail block
    (replaced each time); either may be missing. The tail div is the last part of the frame.
    """
    tail = TAIL_MARK.search(frame)
    appended = APPENDED_MARK.search(frame)
    if tail is None and appended is None:
        return None, None, None
    answer_id = int((tail or appended).group(1))
    added = None
    if appended is not None:
        end = tail.start() if tail is not None else len(frame)
        added = visible_chars(frame[appended.end() : end])
    tail_chars = visible_chars(frame[tail.end() :]) if tail is not None else None
    return answer_id, added, tail_chars


def snapshot_text(frame: str) -> tuple[int | None, int | None, int | None]:
    """Return (answer id, visible chars of the finished blocks, of the tail) of a snapshot.

    A snapshot replaces the whole body: a socket that joins a streaming answer (or
    follows one from another process) gets one before any delta. (None, None, None)
    for any other frame.
    """
    found = SNAPSHOT_MARK.search(frame)
    if found is None:
        return None, None, None
    tail_mark = f'<div id="message-{found.group(1)}-tail" class="stream-tail">'
    tail = frame.find(tail_mark, found.end())
    if tail < 0:
        return None, None, None
    blocks = visible_chars(frame[found.end() : tail])
    return int(found.group(1)), blocks, visible_chars(frame[tail + len(tail_mark) :])


@functools.lru_cache(maxsize=8)
def prefix_visibility(tokens: tuple[str, ...]) -> tuple[int, ...]:
    """Return, for each k, the visible chars the page shows after tokens[: k + 1].

    Uses the app's own StreamingMarkdown, fed one token at a time, so a frame's visible
    length maps back to the last token it contains, whatever the Markdown turns into.
    """
    from conversations.rendering.streaming import StreamingMarkdown

    renderer = StreamingMarkdown()
    shown = []
    for token in tokens:
        renderer.feed(token)
        shown.append(visible_chars(renderer.blocks_html() + renderer.tail_html()))
    return tuple(shown)


@functools.lru_cache(maxsize=8)
def raw_visibility(tokens: tuple[str, ...]) -> tuple[int, ...]:
    """Return, for each k, the visible chars of tokens[: k + 1] shown as escaped plain text.

    The limit relay shows the answer as it came, without Markdown, so its frames map
    back to tokens by the raw text's non-space characters.
    """
    shown, total = [], 0
    for token in tokens:
        total += len(SPACE.sub("", token))
        shown.append(total)
    return tuple(shown)


def token_index(visibility: tuple[int, ...], chars: int, start: int = 0) -> int:
    """Return the first token index whose prefix shows at least `chars` characters."""
    for index in range(start, len(visibility)):
        if visibility[index] >= chars:
            return index
    return len(visibility) - 1
