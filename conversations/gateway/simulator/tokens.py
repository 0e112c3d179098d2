"""The simulator's token rule: simple enough to check by eye, consistent everywhere.

A token is a word (letters, digits, apostrophes) with the spaces before it, one CJK
character, one punctuation mark, or a run of line breaks. Streams send one token per
delta, so `output_tokens` of a message equals the number of text deltas, and the input
count (`POST /v1/responses/input_tokens` and `usage.input_tokens`) is the same rule
applied to everything the model reads, plus a flat cost per image.
"""

from __future__ import annotations

import re

__all__ = ["IMAGE_TOKENS", "count_tokens", "is_cjk", "tokenize"]

IMAGE_TOKENS = 85  # what a low-detail image costs on real models

_CJK = (
    r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\u3000-\u303f\uff00-\uffef"
)
_TOKEN = re.compile(
    rf"[ \t]*[{_CJK}]"  # one CJK character or CJK punctuation mark
    rf"|[ \t]*(?:(?![{_CJK}])[\w'])+"  # a word, with the spaces before it
    r"|[ \t]*[^\w\s]"  # one punctuation mark
    r"|\s+"  # line breaks and any other whitespace
)
_HAS_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def tokenize(text: str) -> list[str]:
    """Return the tokens of `text`; joined together they give back `text` exactly."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """Return the number of tokens in `text`."""
    return len(tokenize(text))


def is_cjk(text: str) -> bool:
    """Return whether `text` contains Chinese characters."""
    return _HAS_CJK.search(text) is not None
