"""Turn the results dictionary into the Markdown report (headline table, then details)."""

from __future__ import annotations

import json

from bench.common import ms

NAMES = {"sqlite": "SQLite + in-memory", "postgres": "PostgreSQL + Redis"}


def mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:.0f} MiB"


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**missed**")


def added(result: dict, q: str) -> float | None:
    app, direct = result.get(f"ttft_{q}"), result.get(f"direct_ttft_{q}")
    return None if app is None or direct is None else app - direct


def rows(results: dict) -> list[tuple[str, str, dict, bool | None]]:
    """Return (metric, target, {backend: cell}, all met?) rows."""
    backends = results["backends"]
    out = []

    def row(metric: str, target: str, cell, check=None) -> None:
        cells, oks = {}, []
        for name, data in backends.items():
            try:
                cells[name] = cell(data)
                if check is not None:
                    oks.append(bool(check(data)))
            except (KeyError, IndexError, TypeError):
                cells[name] = "-"
        out.append((metric, target, cells, (all(oks) if oks else None)))

    levels = [t["streams"] for t in next(iter(backends.values()), {}).get("ttft", [])]
    for i, streams in enumerate(levels):
        target = "p50 ≤ 5, p99 ≤ 25 ms" if streams == 100 else "(report)"
        check = None
        if streams == 100:

            def check(d, i=i):
                t = d["ttft"][i]
                return added(t, "p50") <= 0.005 and added(t, "p99") <= 0.025

        row(
            f"Added time to first token, {streams} stream{'s' * (streams > 1)} (p50 / p99 ms)",
            target,
            lambda d, i=i: f"{ms(added(d['ttft'][i], 'p50'))} / {ms(added(d['ttft'][i], 'p99'))}",
            check,
        )
    ramp_levels = [r["streams"] for r in next(iter(backends.values()), {}).get("ramp", [])]
    for i, streams in enumerate(ramp_levels):
        row(
            f"{streams} streams at 30 tok/s: token lag p50 / p99 ms (simulator's own p99)",
            "p99 ≤ 250 ms" if streams >= 500 else "(ramp)",
            lambda d, i=i: (
                f"{ms(d['ramp'][i]['lag_p50'])} / {ms(d['ramp'][i]['lag_p99'])} "
                f"({ms(d['ramp'][i]['control_lag_p99'])})"
            ),
            (lambda d, i=i: d["ramp"][i]["lag_p99"] <= 0.25) if streams >= 500 else None,
        )
        row(
            f"{streams} streams: Daphne CPU / peak RSS",
            "(report)",
            lambda d, i=i: (
                f"{d['ramp'][i]['daphne_cpu_percent']:.0f} % / "
                f"{mib(d['ramp'][i]['daphne_peak_rss'])}"
            ),
        )
        row(
            f"{streams} streams: answers complete / saved in full / started",
            "all",
            lambda d, i=i: (
                f"{d['ramp'][i]['complete']} / {d['ramp'][i]['db_full_text']} / "
                f"{d['ramp'][i]['turns']}"
            ),
            lambda d, i=i: d["ramp"][i]["db_full_text"] == d["ramp"][i]["turns"] > 0,
        )
    row(
        "Burst of 200: first fragment p50 / p99 ms",
        "p50 ≤ 300 ms",
        lambda d: f"{ms(d['burst']['first_frame_p50'])} / {ms(d['burst']['first_frame_p99'])}",
        lambda d: d["burst"]["first_frame_p50"] <= 0.3,
    )
    row(
        "Burst of 200: first text p50 / p99 ms (direct simulator p50)",
        "(report)",
        lambda d: (
            f"{ms(d['burst']['ttft_p50'])} / {ms(d['burst']['ttft_p99'])} "
            f"({ms(d['burst']['direct_ttft_p50'])})"
        ),
    )
    row(
        "Burst of 200: complete / saved in full",
        "all 200",
        lambda d: f"{d['burst']['complete']} / {d['burst']['db_full_text']}",
        lambda d: d["burst"]["db_full_text"] == d["burst"]["turns"],
    )
    row(
        "Idle Daphne RSS after start",
        "≤ 120 MiB",
        lambda d: mib(d["idle_rss"]),
        lambda d: d["idle_rss"] <= 120 * 2**20,
    )
    row(
        "RSS per idle websocket (opened)",
        "≤ 100 KB",
        lambda d: (
            f"{d['idle_sockets']['per_socket'] / 1000:.0f} KB ({d['idle_sockets']['opened']})"
        ),
        lambda d: d["idle_sockets"]["per_socket"] <= 100_000,
    )
    row(
        "Database rows written per answer (ins+upd+del; commits)",
        "≤ 3 + 1/s streamed",
        lambda d: writes_cell(d["writes"]),
        lambda d: writes_per_answer(d["writes"])[0] <= 3 + d["writes"]["answer_seconds_hint"],
    )
    row(
        "Conversation of 1,000 messages: ms, queries (10 messages: queries)",
        "≤ 150 ms, constant",
        lambda d: (
            f"{d['pages']['conversation_long']['ms']:.0f} ms, "
            f"{d['pages']['conversation_long']['queries']} "
            f"({d['pages']['conversation_short']['queries']})"
        ),
        lambda d: (
            d["pages"]["conversation_long"]["ms"] <= 150
            and d["pages"]["conversation_long"]["queries"]
            == d["pages"]["conversation_short"]["queries"]
        ),
    )
    row(
        "Chat page, sidebar of 10,000 conversations: ms, queries (10 convs: queries)",
        "≤ 50 ms, constant",
        lambda d: (
            f"{d['pages']['sidebar_heavy']['ms']:.0f} ms, {d['pages']['sidebar_heavy']['queries']} "
            f"({d['pages']['sidebar_light']['queries']})"
        ),
        lambda d: (
            d["pages"]["sidebar_heavy"]["ms"] <= 50
            and d["pages"]["sidebar_heavy"]["queries"] == d["pages"]["sidebar_light"]["queries"]
        ),
    )
    return out


def writes_per_answer(writes: dict) -> tuple[float, float]:
    answers = max(writes["turns"], 1)
    total = sum(sum(t.values()) for t in writes["tables"].values())
    return total / answers, writes["commits"] / answers


def writes_cell(writes: dict) -> str:
    rows_per, commits_per = writes_per_answer(writes)
    return f"{rows_per:.1f} rows, {commits_per:.1f} commits"


def render(results: dict) -> str:
    m = results["machine"]
    names = list(results["backends"])
    lines = [
        f"# chatweb benchmarks{' (quick)' if results['quick'] else ''}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']:.0f} GiB, "
        f"Python {m['python']}, {m['platform']}; commit {m['commit']}; "
        f"load average at start {', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}. "
        "Simulator, Daphne and load clients share the machine (and other people's tests "
        "ran concurrently), so numbers are noisy.",
        "",
        f"Settings: {json.dumps(results['settings'])}; versions {json.dumps(m['versions'])}.",
        "",
        "| metric | target | " + " | ".join(NAMES.get(n, n) for n in names) + " | verdict |",
        "|---|---|" + "---|" * len(names) + "---|",
    ]
    for backend in results["backends"].values():
        if "writes" in backend:
            w = backend["writes"]
            w["answer_seconds_hint"] = len(w.get("expected_text", "")) and 142 / 30
    for metric, target, cells, ok in rows(results):
        lines.append(
            f"| {metric} | {target} | "
            + " | ".join(cells.get(n, "-") for n in names)
            + f" | {verdict(ok)} |"
        )
    md = results.get("markdown", {})
    if "ratio" in md:
        lines.append(
            "| Live Markdown CPU, 20 KB in 4-char deltas: streamed / once | ≤ 3 | "
            + " | ".join(
                f"{md['ratio']:.1f}x ({md['stream_ms']:.0f} / {md['once_ms']:.0f} ms)"
                for _ in names
            )
            + f" | {verdict(md['ratio'] <= 3)} |"
        )
    lines += ["", "## Details", ""]
    for name, backend in results["backends"].items():
        lines.append(f"### {NAMES.get(name, name)}")
        lines.append("")
        for t in backend.get("ttft", []):
            lines.append(
                f"- TTFT {t['streams']} streams ({t['turns']} turns, {t['direct_ttft_n']} direct): "
                f"app p50/p99 {ms(t['ttft_p50'])}/{ms(t['ttft_p99'])} ms, "
                f"direct {ms(t['direct_ttft_p50'])}/{ms(t['direct_ttft_p99'])} ms, "
                f"complete {t['complete']}/{t['turns']}, timeouts {t['timeouts']}"
            )
        for r in backend.get("ramp", []):
            lines.append(
                f"- ramp {r['streams']}: {r['turns']} answers in {r['wall']:.0f} s, "
                f"{r['frames']} frames; lag p50/p99 {ms(r['lag_p50'])}/{ms(r['lag_p99'])} ms, "
                f"final-frame lag p50/p99 {ms(r['final_lag_p50'])}/{ms(r['final_lag_p99'])} ms, "
                f"simulator drift p50/p99 {ms(r['control_lag_p50'])}/"
                f"{ms(r['control_lag_p99'])} ms; "
                f"TTFT p50/p99 {ms(r['ttft_p50'])}/{ms(r['ttft_p99'])} ms; "
                f"Daphne CPU {r['daphne_cpu_percent']:.0f} %, client CPU "
                f"{r['client_cpu_percent']:.0f} %; complete {r['complete']}, timeouts "
                f"{r['timeouts']}, other {r['other_status']}; DB answers {r['db_answers']}, "
                f"complete {r['db_complete']}, full text {r['db_full_text']}; "
                f"connect failures {r['connect_failed']}"
            )
        if "writes" in backend:
            w = backend["writes"]
            lines.append(
                f"- writes: {w['turns']} answers ({w['complete']} complete), "
                f"{w['commits']} commits; rows by table: {json.dumps(w['tables'])}"
            )
        if "idle_sockets" in backend:
            s = backend["idle_sockets"]
            lines.append(
                f"- idle sockets: {s['opened']} opened ({s['failed']} failed) in "
                f"{s['open_seconds']:.1f} s; RSS {mib(s['before'])} → {mib(s.get('after'))}"
            )
        pages = backend.get("pages", {})
        if "error" in pages:
            lines.append(f"- pages failed: `{pages['error'][-400:]}`")
        for key in (
            "conversation_long",
            "conversation_short",
            "sidebar_heavy",
            "sidebar_light",
            "sidebar_heavy_partial",
        ):
            if key in pages:
                p = pages[key]
                lines.append(
                    f"- {key} `{p['path']}`: status {p['status']}, median {p['ms']:.0f} ms "
                    f"(min {min(p['ms_all']):.0f}, max {max(p['ms_all']):.0f}), "
                    f"{p['queries']} queries"
                )
        lines.append("")
    if md:
        lines.append(f"- Markdown: {json.dumps(md)}")
    if "profile" in results:
        streams = results["profile"].get("streams")
        lines += [
            "",
            f"## Profile (pyinstrument, Daphne main thread, {streams} streams, SQLite)",
            "",
        ]
        lines += ["```", *results["profile"]["text"].splitlines()[:80], "```"]
    lines.append(f"\nElapsed: {results.get('elapsed_seconds', 0):.0f} s.")
    return "\n".join(lines) + "\n"
