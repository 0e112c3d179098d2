"""From raw observations to numbers: latencies, lag behind the simulator, percentiles.

The load client records when it sent each question and when each frame arrived (wall
clock); the simulator records when it sent each text delta of each response. Both run on
this machine, so the two clocks are the same clock. A frame's lag is how long after the
simulator sent the newest token the frame shows; which token that is follows from how
many characters the frame makes visible (see `bench.common.prefix_visibility`).
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from pathlib import Path

from bench.common import percentile, prefix_visibility, token_index


@dataclass(frozen=True)
class Stream:
    """One response as the simulator sent it."""

    started: float  # when its request arrived
    text_sent_at: tuple[float, ...]


def read_emissions(path: Path, offset: int = 0) -> tuple[dict[str, Stream], int]:
    """Return the streams logged after byte `offset`, and the offset to read on from."""
    streams = {}
    with path.open("rb") as log:
        log.seek(offset)
        data = log.read()
    complete = data[: data.rfind(b"\n") + 1]
    for line in complete.splitlines():
        entry = json.loads(line)
        streams[entry["id"]] = Stream(entry["started"], tuple(entry["text_sent_at"] or ()))
    return streams, offset + len(complete)


def spread(values: list[float], prefix: str) -> dict:
    return {
        f"{prefix}_p50": percentile(values, 50),
        f"{prefix}_p95": percentile(values, 95),
        f"{prefix}_p99": percentile(values, 99),
        f"{prefix}_n": len(values),
    }


def difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def first_fragment(turns: list[dict], directs: list[dict]) -> dict:
    """Time to the first answer fragment through the app and directly, and the difference.

    Also the time to the first frame of any kind: the page showing the question and an
    answer bubble that is on its way (what a user sees first in a burst).
    """
    app = [t["first_fragment"] - t["sent"] for t in turns if t["first_fragment"] is not None]
    shown = [t["first_frame"] - t["sent"] for t in turns if t["first_frame"] is not None]
    text = [t["first_text"] - t["sent"] for t in turns if t["first_text"] is not None]
    direct = [d["first"] - d["sent"] for d in directs if d["first"] is not None]
    out = {
        **spread(app, "app"),
        **spread(direct, "direct"),
        **spread(text, "text"),
        **spread(shown, "accepted"),
    }
    for q in ("p50", "p99"):
        out[f"added_{q}"] = difference(out[f"app_{q}"], out[f"direct_{q}"])
    return out


def lag(
    turns: list[dict],
    response_ids: dict[int, str],
    streams: dict[str, Stream],
    tokens: tuple[str, ...],
    visibility: tuple[int, ...] | None = None,
) -> dict:
    """Lag of every frame behind the simulator's sending of its newest token.

    Also: the final frame's lag behind the last token (when the answer shows as complete,
    saved), and how long after the question was sent its request reached the gateway.
    """
    visibility = visibility or prefix_visibility(tokens)
    frame_lags, final_lags, request_delays, unmatched = [], [], [], 0
    for turn in turns:
        stream = streams.get(response_ids.get(turn["answer_id"], ""))
        if stream is None or not stream.text_sent_at:
            unmatched += 1
            continue
        request_delays.append(stream.started - turn["sent"])
        index = 0
        for received, chars in turn["frames"]:
            index = min(token_index(visibility, chars, index), len(stream.text_sent_at) - 1)
            frame_lags.append(received - stream.text_sent_at[index])
        if turn["final"] is not None and turn["status"] == "complete":
            final_lags.append(turn["final"] - stream.text_sent_at[-1])
    return {
        **spread(frame_lags, "lag"),
        **spread(final_lags, "final_lag"),
        **spread(request_delays, "request"),
        "unmatched": unmatched,
    }


def drift(streams: dict[str, Stream], pace: float, first_token_delay: float) -> dict:
    """How late the simulator itself sent tokens against its own schedule (its load)."""
    late = [
        sent - (stream.started + first_token_delay + (index + 1) / pace)
        for stream in streams.values()
        for index, sent in enumerate(stream.text_sent_at)
    ]
    return spread(late, "drift")


def cpu_per_unit(turns: list[dict], start: float, end: float, cpu_seconds: float) -> dict:
    """The server's CPU in a steady window divided by what the clients saw happen in it.

    Turn starts are questions sent, finishes are answers shown as finished, fragments are
    frames that showed more of an answer, all within [start, end] (wall clock, the same
    clock as the sampler's). Each figure divides the whole CPU of the window, so each
    includes the other two kinds of work: they are all-in costs, comparable between the
    app and the limit relay under the same load, not a decomposition.
    """
    starts = sum(start <= t["sent"] <= end for t in turns)
    finishes = sum(t["final"] is not None and start <= t["final"] <= end for t in turns)
    fragments = sum(start <= received <= end for t in turns for received, _ in t["frames"])

    def per(count: int) -> float | None:
        return 1000 * cpu_seconds / count if count else None

    return {
        "window_starts": starts,
        "window_finishes": finishes,
        "window_fragments": fragments,
        "cpu_ms_per_start": per(starts),
        "cpu_ms_per_finish": per(finishes),
        "cpu_ms_per_fragment": per(fragments),
    }


def outcome(turns: list[dict]) -> dict:
    return {
        "started": len(turns),
        "complete": sum(t["status"] == "complete" for t in turns),
        "timeouts": sum(t["status"] == "timeout" for t in turns),
        "other_status": sorted({t["status"] for t in turns} - {"complete", "timeout"}),
    }


def group(
    result: dict,
    response_ids: dict[int, str],
    streams: dict[str, Stream],
    tokens: tuple[str, ...],
) -> dict:
    """A group's answer as its members' sockets saw it, split by app process.

    "local" are the sockets on the process that generates the answer (the owner's),
    "remote" the others, fed through their process's hub. For each: send → first words
    and send → final bubble; each frame's lag behind the simulator (as `lag`); and each
    frame's lag behind the same frame on the owner's socket (`behind_owner`), which is
    what relaying through another process costs.
    """
    sent, watches = result["sent"], result["watches"]
    local = [watch for watch in watches if watch["process"] == 0]
    owner = next(watch for watch in watches if watch["owner"])
    shown_at = earliest_shown(local)
    out: dict = {"sockets": len(watches), "typing_frames": result["typing_frames"]}
    for name, chosen in (("local", local), ("remote", [w for w in watches if w["process"]])):
        turns = [{**watch, "sent": sent} for watch in chosen]
        behind = [lag for watch in chosen for lag in behind_owner(watch, owner, shown_at)]
        numbers = {
            "sockets": len(chosen),
            "complete": sum(watch["status"] == "complete" for watch in chosen),
            "snapshots": sum(watch["snapshots"] for watch in chosen),
            **spread([w["first_text"] - sent for w in chosen if w["first_text"]], "first_text"),
            **spread([w["final"] - sent for w in chosen if w["final"]], "final"),
            **spread(behind, "behind"),
            **lag(turns, response_ids, streams, tokens),
        }
        out.update({f"{name}.{key}": value for key, value in numbers.items()})
    return out


def behind_owner(watch: dict, owner: dict, shown_at) -> list[float]:
    """Return each frame's arrival on `watch` minus the same frame's on the owner's socket.

    After its first snapshot every socket takes the same fragments, so its last n frames
    are the owner's last n, showing the same text. When they do not line up (a snapshot
    that already held text stands for several of the owner's frames), each frame is
    measured against the first moment a generating-process socket showed as much text
    (`shown_at`, see `earliest_shown`).
    """
    mine, theirs = watch["frames"], owner["frames"][-len(watch["frames"]) :]
    if mine and [chars for _, chars in mine] == [chars for _, chars in theirs]:
        return [a - b for (a, _), (b, _) in zip(mine, theirs, strict=True)]
    return [received - at for received, chars in mine if (at := shown_at(chars)) is not None]


def earliest_shown(watches: list[dict]):
    """Return a function: visible chars -> when the first of `watches` showed that many."""
    frames = sorted(frame for watch in watches for frame in watch["frames"])
    times, most = [], []
    for received, chars in frames:
        if not most or chars > most[-1]:
            times.append(received)
            most.append(chars)

    def shown_at(chars: int) -> float | None:
        index = bisect.bisect_left(most, chars)
        return times[index] if index < len(most) else None

    return shown_at
