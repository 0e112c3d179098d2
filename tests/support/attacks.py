"""The attacks the security tests tried and what they observed, for docs/reliability.md.

An attack test calls `record()` with what it did, what the code did before the fix
(measured when the test was written against the old code), and what it observes now,
built from the values the test itself asserts. tests/conftest.py writes the rows to
test-artifacts/attacks.json at the end of the run, and `python -m
tests.reliability_report` renders them as the attack table.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["record", "write"]

RESULTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "attacks.json"

_rows: dict[str, dict] = {}


def record(attack: str, *, before: str, observed: str) -> None:
    """Keep one attack's row (the last observation of a repeated test wins)."""
    _rows[attack] = {"attack": attack, "before": before, "observed": observed}


def write() -> None:
    """Write the rows this run observed, merged into those of earlier partial runs."""
    if not _rows:
        return
    rows = {}
    if RESULTS.exists():
        rows = {row["attack"]: row for row in json.loads(RESULTS.read_text())}
    rows.update(_rows)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(list(rows.values()), indent=2, ensure_ascii=False) + "\n")
