"""Turn the results into the Markdown report: the headline table, then the details.

Every figure in the table is the median over the runs; with more than one run, the
lowest and highest value follow in square brackets, as the noise.
"""

from __future__ import annotations

import collections
import json

NAMES = {"sqlite": "SQLite + in-memory", "postgres": "PostgreSQL + Redis"}
MS = 1000


def value(summary: dict, key: str, scale: float = 1.0, digits: int = 0) -> str:
    """Return 'median [low, high]' for one figure, or '-' when it was not measured."""
    figure = summary.get(key)
    if figure is None or figure["median"] is None:
        return "-"

    def number(x: float) -> str:
        return f"{round(x * scale, digits) + 0.0:.{digits}f}"  # + 0.0: no "-0"

    if figure["low"] is None or figure["low"] == figure["high"]:
        return number(figure["median"])
    return f"{number(figure['median'])} [{number(figure['low'])}, {number(figure['high'])}]"


def median(summary: dict, key: str) -> float | None:
    figure = summary.get(key)
    return None if figure is None else figure["median"]


def at_most(summary: dict, key: str, limit: float) -> bool | None:
    found = median(summary, key)
    return None if found is None else found <= limit


def every(*checks: bool | None) -> bool | None:
    known = [c for c in checks if c is not None]
    return None if not known else all(known)


def rows(results: dict) -> list[tuple[str, str, dict[str, tuple[str, bool | None]]]]:
    """Return (metric, target, {backend: (cell, met?)}) rows."""
    plan = results["plan"]
    out = []

    def row(metric: str, target: str, cell, check=lambda s: None) -> None:
        cells = {}
        for name, summary in results["summary"].items():
            if name in NAMES:
                cells[name] = (cell(summary), check(summary))
        out.append((metric, target, cells))

    row(
        "Added time to first token, 1 stream: p50 / p99 ms",
        "(report)",
        lambda s: f"{value(s, 'single.added_p50', MS)} / {value(s, 'single.added_p99', MS)}",
    )
    for n in plan["ramp"]:
        key = f"ramp{n}"
        row(
            f"Added time to first token, {n} streams: p50 / p99 ms",
            "p50 ≤ 5, p99 ≤ 25" if n == 100 else "(report)",
            lambda s, k=key: f"{value(s, k + '.added_p50', MS)} / {value(s, k + '.added_p99', MS)}",
            (
                lambda s, k=key: every(
                    at_most(s, k + ".added_p50", 0.005), at_most(s, k + ".added_p99", 0.025)
                )
            )
            if n == 100
            else (lambda s: None),
        )
    for n in plan["ramp"]:
        key = f"ramp{n}"
        row(
            f"{n} streams at 30 tok/s: lag behind the simulator p50 / p99 ms",
            "p99 ≤ 250 (at 500)" if n == 500 else "(ramp)",
            lambda s, k=key: f"{value(s, k + '.lag_p50', MS)} / {value(s, k + '.lag_p99', MS)}",
            (lambda s, k=key: at_most(s, k + ".lag_p99", 0.25)) if n == 500 else (lambda s: None),
        )
        row(
            f"{n} streams: Daphne CPU % / peak RSS MiB",
            "(report)",
            lambda s, k=key: (
                f"{value(s, k + '.cpu_percent')} / {value(s, k + '.peak_rss', 1 / 2**20)}"
            ),
        )
        row(
            f"{n} streams: answers started / complete / saved in full",
            "all saved",
            lambda s, k=key: (
                f"{value(s, k + '.started')} / {value(s, k + '.complete')} / "
                f"{value(s, k + '.saved')}"
            ),
            lambda s, k=key: every(
                median(s, k + ".saved") == median(s, k + ".started") > 0
                if median(s, k + ".started") is not None
                else None
            ),
        )
    row(
        f"Burst of {plan['burst']}: first fragment (turn shown, answer on its way) p50 / p99 ms",
        "p50 ≤ 300",
        lambda s: f"{value(s, 'burst.accepted_p50', MS)} / {value(s, 'burst.accepted_p99', MS)}",
        lambda s: at_most(s, "burst.accepted_p50", 0.3),
    )
    row(
        f"Burst of {plan['burst']}: first answer fragment p50 / p99 ms (direct p50)",
        "(report)",
        lambda s: (
            f"{value(s, 'burst.app_p50', MS)} / {value(s, 'burst.app_p99', MS)} "
            f"({value(s, 'burst.direct_p50', MS)})"
        ),
    )
    row(
        f"Burst of {plan['burst']}: started / complete / saved in full",
        "all",
        lambda s: (
            f"{value(s, 'burst.started')} / {value(s, 'burst.complete')} / "
            f"{value(s, 'burst.saved')}"
        ),
        lambda s: (
            None
            if median(s, "burst.started") is None
            else median(s, "burst.saved") == median(s, "burst.started")
        ),
    )
    row(
        "Idle Daphne RSS after start, MiB",
        "≤ 120",
        lambda s: value(s, "idle_rss", 1 / 2**20),
        lambda s: at_most(s, "idle_rss", 120 * 2**20),
    )
    row(
        f"RSS per open idle websocket ({plan['idle']}), KB",
        "≤ 100",
        lambda s: value(s, "per_socket", 1 / 1000),
        lambda s: at_most(s, "per_socket", 100_000),
    )
    row(
        "Write transactions per answer (rows written)",
        "≤ 3 + 1 per s streamed",
        lambda s: (
            "not counted on SQLite"
            if median(s, "writes.transactions") is None
            else f"{value(s, 'writes.transactions', digits=1)} "
            f"({value(s, 'writes.rows', digits=1)} rows), "
            f"{value(s, 'writes.stream_seconds', digits=1)} s streamed"
        ),
        lambda s: (
            None
            if median(s, "writes.transactions") is None
            else median(s, "writes.transactions") <= 3 + median(s, "writes.stream_seconds")
        ),
    )
    row(
        "Turn start (a send on a 3-turn chat): CPU ms p50; statements; wall ms (ORM path)",
        "≤ 2 ms, ≤ 3 statements",
        lambda s: (
            f"{value(s, 'start.quick_cpu_ms', digits=2)}; "
            f"{value(s, 'start.quick_statements')}; "
            f"{value(s, 'start.quick_wall_ms', digits=2)} "
            f"({value(s, 'start.orm_cpu_ms', digits=2)}; {value(s, 'start.orm_statements')}; "
            f"{value(s, 'start.orm_wall_ms', digits=2)})"
        ),
        lambda s: every(
            at_most(s, "start.quick_cpu_ms", 2), at_most(s, "start.quick_statements", 3)
        ),
    )
    pages = (
        (
            f"Conversation of {plan['pages'][0]:,} messages",
            "10 messages",
            150,
            "page",
            "long",
            "short",
        ),
        (
            f"Sidebar of {plan['pages'][1]:,} conversations",
            "10 conversations",
            50,
            "sidebar",
            "heavy",
            "light",
        ),
    )
    for title, small, limit, page, big, little in pages:
        timed, many, few = f"{page}.{big}_ms", f"{page}.{big}_queries", f"{page}.{little}_queries"
        row(
            f"{title}: ms; queries ({small})",
            f"≤ {limit} ms, constant",
            lambda s, timed=timed, many=many, few=few: (
                f"{value(s, timed)}; {value(s, many)} ({value(s, few)})"
            ),
            lambda s, timed=timed, many=many, few=few, limit=limit: every(
                at_most(s, timed, limit),
                None if median(s, many) is None else median(s, many) == median(s, few),
            ),
        )
    return out


def limit_rows(plan: dict) -> list[tuple[str, str, float]]:
    """(figure, metric key, scale) of what the app and the limit relay both report."""
    out = [
        (f"Burst of {plan['burst']}: turn shown p50 ms", "burst.accepted_p50", MS),
        (f"Burst of {plan['burst']}: turn shown p99 ms", "burst.accepted_p99", MS),
        (f"Burst of {plan['burst']}: first answer words p50 ms", "burst.text_p50", MS),
        (f"Burst of {plan['burst']}: lag behind the simulator p99 ms", "burst.lag_p99", MS),
        (f"Burst of {plan['burst']}: Daphne CPU ms per turn, all in", "burst.cpu_ms_per_turn", 1),
    ]
    for n in plan["ramp"]:
        if n > 250:
            continue
        k = f"ramp{n}"
        out += [
            (f"{n} streams: added time to first token p50 ms", f"{k}.added_p50", MS),
            (f"{n} streams: added time to first token p99 ms", f"{k}.added_p99", MS),
            (f"{n} streams: lag behind the simulator p50 ms", f"{k}.lag_p50", MS),
            (f"{n} streams: lag behind the simulator p99 ms", f"{k}.lag_p99", MS),
            (f"{n} streams: Daphne CPU %", f"{k}.cpu_percent", 1),
            (f"{n} streams, steady: CPU ms per turn start", f"{k}.cpu_ms_per_start", 1),
            (f"{n} streams, steady: CPU ms per finished answer", f"{k}.cpu_ms_per_finish", 1),
            (f"{n} streams, steady: CPU ms per flushed fragment", f"{k}.cpu_ms_per_fragment", 1),
        ]
    return out


def limit_table(results: dict, names: list[str]) -> list[str]:
    """The app beside the limit relay (bench/relay.py), same clients, same simulator."""
    header = "| figure | " + " | ".join(f"{NAMES[n]}: app | limit relay | app/limit" for n in names)
    lines = [
        "",
        "## The app beside the limit relay",
        "",
        "The limit relay (bench/relay.py) is the least a server can do per turn: Daphne, "
        "httpx to the same simulator, deltas coalesced every 50 ms as escaped HTML; no "
        "database, no Markdown. Measured in the same run with the same clients. CPU per "
        "unit divides Daphne's CPU in the steady window (after every client started, "
        "before any stopped) by the turn starts, finished answers and flushed fragments "
        "the clients saw in it: each figure is all-in (it includes the other two kinds "
        "of work), so compare app with limit, not the three figures with each other.",
        "",
        header + " |",
        "|---|" + "---|---|---|" * len(names),
    ]
    for figure, key, scale in limit_rows(results["plan"]):
        cells = []
        for name in names:
            s = results["summary"][name]
            app, limit = median(s, key), median(s, "limit." + key)
            digits = 2 if "per_fragment" in key else (1 if "cpu_ms" in key else 0)
            ratio = (
                f"{app / limit:.1f}x"
                if isinstance(app, int | float) and isinstance(limit, int | float) and limit > 0
                else "-"
            )
            cells += [
                value(s, key, scale, digits),
                value(s, "limit." + key, scale, digits),
                ratio,
            ]
        lines.append(f"| {figure} | " + " | ".join(cells) + " |")
    return lines


def two_process_table(results: dict) -> list[str]:
    """PostgreSQL + Redis on two Daphne processes beside one, same clients, same levels."""
    s = results["summary"]["postgres"]

    def pair(key: str, a: str, b: str, scale: float = 1.0) -> str:
        return f"{value(s, f'{key}.{a}', scale)} / {value(s, f'{key}.{b}', scale)}"

    def cpu(key: str) -> str:
        each = [f"{key}.cpu_percent_{number}" for number in (1, 2)]
        if all(name in s for name in each):
            return " + ".join(value(s, name) for name in each)
        return value(s, f"{key}.cpu_percent")

    figures = (
        ("added time to first token p50 / p99 ms", lambda k: pair(k, "added_p50", "added_p99", MS)),
        ("lag behind the simulator p50 / p99 ms", lambda k: pair(k, "lag_p50", "lag_p99", MS)),
        ("Daphne CPU % (each process)", cpu),
        (
            "CPU ms per turn start, all processes, all in",
            lambda k: value(s, f"{k}.cpu_ms_per_start", digits=1),
        ),
        (
            "answers started / complete / saved in full",
            lambda k: f"{pair(k, 'started', 'complete')} / {value(s, k + '.saved')}",
        ),
    )
    lines = [
        "",
        "## Two app processes (PostgreSQL + Redis)",
        "",
        "The steady levels again on two Daphne processes sharing the database and the "
        "Redis channel layer, the clients spread over them round-robin (as nginx spreads "
        "connections), beside the same levels on one process. Production runs one process "
        "per core: each has its own GIL, so two processes can use two cores. CPU % is per "
        "process (100 % is one core); CPU ms per turn start is the CPU of both processes "
        "in the steady window divided by the turns started in it, so it shows what "
        "splitting costs per turn. Here the simulator and the clients share the same two "
        "cores.",
        "",
        "| figure | 1 process | 2 processes |",
        "|---|---|---|",
    ]
    for n in results["plan"]["two_process"]:
        for figure, cell in figures:
            lines.append(f"| {n} streams: {figure} | {cell(f'ramp{n}')} | {cell(f'two.ramp{n}')} |")
    return lines


def group_table(results: dict) -> list[str]:
    """A group of people on two processes beside one user alone (PostgreSQL + Redis)."""
    s = results["summary"]["postgres"]

    def pair(key: str, scale: float = MS) -> str:
        return f"{value(s, key + '_p50', scale)} / {value(s, key + '_p95', scale)}"

    def sockets(side: str) -> str:
        return f"{value(s, f'group.{side}.sockets')} sockets"

    rows = (
        ("send → first answer words, p50 / p95 ms", "first_text", "single.text"),
        ("lag behind the simulator, every frame, p50 / p95 ms", "lag", "single.lag"),
        ("lag behind the owner's socket, same frame, p50 / p95 ms", "behind", None),
        ("send → final bubble, p50 / p95 ms", "final", "single.final"),
        ("final bubble after the last token, p50 / p95 ms", "final_lag", "single.final_lag"),
    )
    lines = [
        "",
        f"## A group of {results['plan'].get('group', 20)} on two processes (PostgreSQL + Redis)",
        "",
        "One group conversation, its members' sockets alternating between two Daphne "
        f"processes; {results['plan'].get('group_typists', 5)} members send the typing "
        "frame every second; the owner (on the first process, which therefore generates "
        "the answer) asks once. Every socket follows the answer to its final bubble. The "
        "other process's sockets are fed by its hub, which the generating process sends "
        "one channel-layer message per flush (every 200 ms). Beside them, one user alone "
        "(the single level, one process). Lag behind the owner's socket: each frame's "
        "arrival minus the same frame's on the owner's socket (on the generating "
        "process).",
        "",
        f"| figure | generating process ({sockets('local')}) | other process "
        f"({sockets('remote')}) | one user alone |",
        "|---|---|---|---|",
    ]
    for figure, key, single in rows:
        alone = pair(single) if single else "-"
        lines.append(
            f"| {figure} | {pair(f'group.local.{key}')} | {pair(f'group.remote.{key}')} | {alone} |"
        )
    lines += [
        f"| answers complete on the sockets; snapshots taken | "
        f"{value(s, 'group.local.complete')}; {value(s, 'group.local.snapshots')} | "
        f"{value(s, 'group.remote.complete')}; {value(s, 'group.remote.snapshots')} | - |",
        "",
        "| channel layer during the turn (Redis MONITOR) | |",
        "|---|---|",
        f"| live.fragment messages per flush | {value(s, 'group.layer.per_flush', digits=2)} |",
        f"| live.fragment flush messages / flushes | {value(s, 'group.layer.fragment_messages')}"
        f" / {value(s, 'group.layer.flushes')} |",
        f"| channels / processes they went to | {value(s, 'group.layer.fragment_channels')} / "
        f"{value(s, 'group.layer.fragment_processes')} |",
        f"| snapshots sent in answer to a watch; watch requests | "
        f"{value(s, 'group.layer.snapshot_replies')}; {value(s, 'group.layer.watch_requests')} |",
        f"| all layer messages (presence, typing, turn events included) | "
        f"{value(s, 'group.layer.messages')} |",
        f"| typing frames sent | {value(s, 'group.typing_frames')} |",
        f"| Daphne CPU % over the turn, each process | {value(s, 'group.cpu_percent_1')} + "
        f"{value(s, 'group.cpu_percent_2')} |",
    ]
    return lines


def verdict(checks: list[bool | None]) -> str:
    known = [c for c in checks if c is not None]
    if not known:
        return "-"
    return "met" if all(known) else "**missed**"


def render(results: dict) -> str:
    m = results["machine"]
    names = [n for n in results["summary"] if n in NAMES]
    runs = len(results["runs"])
    lines = [
        f"# chatweb benchmarks{' (quick)' if results['quick'] else ''}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']:.0f} GiB, "
        f"Python {m['python']}, {m['platform']}; commit {m['commit']}; "
        f"load average at start {', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}. "
        "The simulator, Daphne and the load clients share these cores.",
        "",
        f"Settings: {json.dumps(results['settings'])}; versions {json.dumps(m['versions'])}.",
        "",
        f"Each figure is the median of {runs} run{'s' * (runs > 1)}"
        + (", with the lowest and highest in square brackets." if runs > 1 else "."),
        "",
        "| metric | target | " + " | ".join(NAMES[n] for n in names) + " | verdict |",
        "|---|---|" + "---|" * len(names) + "---|",
    ]
    for metric, target, cells in rows(results):
        lines.append(
            f"| {metric} | {target} | "
            + " | ".join(cells[n][0] for n in names)
            + f" | {verdict([cells[n][1] for n in names])} |"
        )
    markdown = results["summary"].get("markdown")
    if markdown:
        ratio = value({"r": markdown}, "r", digits=1)
        lines.append(
            "| Live Markdown CPU, 20 KB answer: streamed / rendered once | ≤ 3 | "
            + " | ".join(f"{ratio}x" for _ in names)
            + f" | {verdict([markdown['median'] <= 3])} |"
        )
    if any("limit.burst.started" in results["summary"][n] for n in names):
        lines += limit_table(results, names)
    two_process = results["plan"].get("two_process", [])
    if any(f"two.ramp{n}.started" in results["summary"].get("postgres", {}) for n in two_process):
        lines += two_process_table(results)
    if "group.sockets" in results["summary"].get("postgres", {}):
        lines += group_table(results)
    lines += ["", "## Details (medians)", ""]
    for name in names:
        s = results["summary"][name]
        lines += [f"### {NAMES[name]}", ""]
        for n in results["plan"]["ramp"]:
            k = f"ramp{n}"
            lines.append(
                f"- {n} streams: first fragment app {value(s, k + '.app_p50', MS)}/"
                f"{value(s, k + '.app_p99', MS)} ms vs direct {value(s, k + '.direct_p50', MS)}/"
                f"{value(s, k + '.direct_p99', MS)} ms (p50/p99); question → gateway request "
                f"{value(s, k + '.request_p50', MS)}/{value(s, k + '.request_p99', MS)} ms; "
                f"final frame after last token {value(s, k + '.final_lag_p50', MS)}/"
                f"{value(s, k + '.final_lag_p99', MS)} ms; simulator's own lateness "
                f"{value(s, k + '.drift_p50', MS)}/{value(s, k + '.drift_p99', MS)} ms; "
                f"client CPU {value(s, k + '.client_cpu_percent')} %; timeouts "
                f"{value(s, k + '.timeouts')}; unmatched {value(s, k + '.unmatched')}"
            )
        lines.append(
            f"- burst: first text {value(s, 'burst.text_p50', MS)}/"
            f"{value(s, 'burst.text_p99', MS)} ms; direct first token "
            f"{value(s, 'burst.direct_p50', MS)}/{value(s, 'burst.direct_p99', MS)} ms"
        )
        lines.append(
            f"- one stream: first fragment app {value(s, 'single.app_p50', MS)} ms, direct "
            f"{value(s, 'single.direct_p50', MS)} ms"
        )
        last = results["runs"][-1]["backends"][name]["details"]
        if "writes" in last:
            lines.append(f"- writes (last run): {json.dumps(last['writes'])}")
        lines.append("")
    md_runs = [r["markdown"] for r in results["runs"] if "ratio" in r.get("markdown", {})]
    for md in md_runs:
        lines.append(
            f"- Markdown: once {md['once_ms']:.0f} ms, streamed {md['stream_ms']:.0f} ms "
            f"(ratio {md['ratio']:.1f}; with the final render {md['ratio_with_final']:.1f})"
        )
    if "profile" in results:
        profiled = results["profile"]
        lines += profile_lines(
            profiled, f"Daphne under {profiled['streams']} concurrent streams (SQLite)"
        )
        if "burst" in profiled:
            lines += profile_lines(
                profiled["burst"],
                f"Daphne through a burst of {profiled['burst']['turns']} turns (SQLite)",
            )
    lines.append(f"\nElapsed: {results.get('elapsed_seconds', 0):.0f} s.")
    return "\n".join(lines) + "\n"


# --- py-spy ----------------------------------------------------------------------------


def summarise_profile(raw: str, top: int = 25) -> dict:
    """Return the busiest functions of a py-spy raw profile, split by thread kind.

    Shares are of all CPU samples: the main thread runs the event loop (sockets,
    streams, rendering), the others are the database threads.
    """
    inclusive = {"event loop": collections.Counter(), "database threads": collections.Counter()}
    totals = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        kind = "database threads" if "_bootstrap" in frames[0] else "event loop"
        totals[kind] += int(count)
        for name in {frame.split(" (")[0] + " (" + location(frame) + ")" for frame in frames}:
            inclusive[kind][name] += int(count)
    total = sum(totals.values()) or 1
    return {
        "samples": total,
        "shares": {kind: totals[kind] / total for kind in totals},
        "top": {
            kind: [
                (name, count / total)
                for name, count in counter.most_common()
                if not name.endswith(SCAFFOLDING)
            ][:top]
            for kind, counter in inclusive.items()
        },
    }


# Frames under every sample of their thread (the event loop, the thread pool, Channels'
# middleware stack): left out so that the list shows where the time goes.
SCAFFOLDING = tuple(
    f"({module})"
    for module in (
        "<frozen runpy>",
        "daphne/__main__.py",
        "daphne/cli.py",
        "daphne/server.py",
        "internet/asyncioreactor.py",
        "asyncio/base_events.py",
        "asyncio/events.py",
        "python3.11/threading.py",
        "futures/thread.py",
        "asgiref/sync.py",
        "channels/utils.py",
        "channels/consumer.py",
        "channels/middleware.py",
        "channels/routing.py",
        "channels/auth.py",
        "channels/sessions.py",
        "chatweb/security.py",
    )
)


def location(frame: str) -> str:
    """Return 'package/module.py' of a py-spy frame 'name (path/to/module.py:line)'."""
    path = frame.rpartition(" (")[2].rstrip(")").split(":")[0]
    return "/".join(path.split("/")[-2:])


def profile_lines(profile: dict, title: str) -> list[str]:
    lines = [
        "",
        f"## Profile: py-spy, {title}",
        "",
        f"{profile['samples']} CPU samples; "
        + ", ".join(f"{kind} {share:.0%}" for kind, share in profile["shares"].items())
        + ". Inclusive share of all samples:",
        "",
    ]
    for kind, entries in profile["top"].items():
        lines += [f"**{kind}**", "", "| share | function |", "|---|---|"]
        lines += [f"| {share:.1%} | `{name}` |" for name, share in entries]
        lines.append("")
    return lines
