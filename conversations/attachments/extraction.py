"""Run a parser in a separate process, a few at a time, and kill it if it takes too long.

Reading a document means running a parser over hostile input: a crafted PDF can make
pypdf loop or swell for minutes. A thread cannot be stopped, and anything on the event
loop would stall every answer streaming in the process; a process can be killed. So
each extraction runs in a child process, at most `CHAT_EXTRACT_WORKERS` at once in this
process (`SLOTS`; others wait), each killed after `CHAT_EXTRACT_SECONDS`, with its
address space capped at `MEMORY_LIMIT` where the system allows it.

Children come from a "forkserver": a small process started once, with the parsers
already imported, that forks a clean child per extraction. Plain fork would copy this
threaded server mid-flight (locks held by other threads stay locked in the child), and
"spawn" would start a new interpreter and import pypdf for every file. The target must
be importable without Django (the child has no settings): `parsers.extract`.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from django.conf import settings

from conversations.attachments.slots import Slots

__all__ = ["MEMORY_LIMIT", "SLOTS", "ExtractionFailed", "TimedOut", "run"]

# Room for the interpreter (about 60 MB), pypdf and a 20 MB file parsed several times
# over (pypdf stops any one stream at 75 MB unpacked); a file that needs more is refused
# rather than allowed to push the server out of memory.
MEMORY_LIMIT = 512 * 1024 * 1024
# The server imports these once; every child is forked from it with them loaded. "__main__"
# is the server's own start script (Daphne's, pytest's), which every child would import
# again otherwise: multiprocessing prepares children so.
PRELOADED = ["__main__", "conversations.attachments.parsers"]


class ExtractionFailed(Exception):
    """The child died without an answer (killed for memory, crashed in C code)."""


class TimedOut(ExtractionFailed):
    """The child took longer than it was given and was killed."""


# At most CHAT_EXTRACT_WORKERS extractions at once in this process; others wait.
SLOTS = Slots("CHAT_EXTRACT_WORKERS")
_context_lock = threading.Lock()
_context = None


def context():
    """Return the forkserver context, its server preloading the parsers (made once)."""
    global _context
    with _context_lock:
        if _context is None:
            methods = multiprocessing.get_all_start_methods()
            _context = multiprocessing.get_context(
                "forkserver" if "forkserver" in methods else "spawn"
            )
            if "forkserver" in methods:
                _context.set_forkserver_preload(PRELOADED)
        return _context


def limit_memory(limit: int) -> None:
    """Cap the child's address space, where the platform lets a process do so."""
    try:
        import resource
    except ImportError:  # not on this platform: the time limit still holds
        return
    with suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def child(connection, target: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    """The child process: cap memory, run the target, send back its result or error."""
    limit_memory(MEMORY_LIMIT)
    try:
        outcome = ("ok", target(*args, **kwargs))
    except BaseException as error:  # sent to the parent, which decides what it means
        outcome = ("error", error)
    try:
        connection.send(outcome)
    except Exception:  # an error that will not pickle: say what it was
        connection.send(("error", ExtractionFailed(repr(outcome[1]))))
    connection.close()


def run(target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Return `target(*args, **kwargs)` run in a child process, or raise what it raised.

    Waits for a free slot first (raising `slots.Busy` past twice the time limit); the
    time limit starts when the child does. Raises
    TimedOut when the child takes longer than `CHAT_EXTRACT_SECONDS`, ExtractionFailed
    when it dies without answering. Call it from a thread, never the event loop: it
    blocks until the child is done.
    """
    # Waiting longer than two turns of the slots means the queue is longer than they
    # serve (one user sending slow files, say): refuse rather than hold a thread.
    with SLOTS.held(timeout=2 * settings.CHAT_EXTRACT_SECONDS):
        return run_in_child(target, args, kwargs, seconds=settings.CHAT_EXTRACT_SECONDS)


def run_in_child(target, args: tuple, kwargs: dict, *, seconds: float) -> Any:
    ctx = context()
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=child, args=(sender, target, args, kwargs), daemon=True)
    try:
        process.start()
    except BaseException:
        sender.close()
        receiver.close()
        raise
    try:
        sender.close()  # the child holds its own end; EOF now means the child is gone
        if not receiver.poll(seconds):
            raise TimedOut(f"{getattr(target, '__name__', target)} took over {seconds} s")
        try:
            status, value = receiver.recv()
        except EOFError:
            process.join(1)
            raise ExtractionFailed(f"the worker ended with code {process.exitcode}") from None
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        process.close()
        receiver.close()
    if status == "error":
        raise value
    return value
