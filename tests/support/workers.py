"""Targets for `extraction.run` in tests: importable without Django, as a worker needs.

A worker process is forked from a server that has no Django settings, so what it runs
must import nothing that needs them (test modules do: they import models).
"""

from __future__ import annotations

import os
import time

__all__ = ["allocate", "answer", "die", "fail", "spin", "wait_then_answer"]


def spin(*args, **kwargs) -> None:
    """Loop for ever, as a parser caught in a crafted file's cycle would."""
    while True:
        pass


def answer(value):
    return value


def wait_then_answer(value, seconds: float):
    time.sleep(seconds)
    return value, os.getpid()


def allocate(megabytes: int) -> int:
    """Ask for `megabytes` of memory at once, as a decompression bomb would."""
    return len(bytearray(megabytes * 1024 * 1024))


def fail() -> None:
    raise ValueError("the parser gave up")


def die() -> None:
    os._exit(3)  # as a crash in C code ends a process: no exception, no answer
