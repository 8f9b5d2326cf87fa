"""The fault suite's figures as the Markdown table in docs/reliability.md.

Reads the JSON lines the suite appends to $ROLLBOT_FAULTS_LOG (one per run of a
fault test) and counts, per fault: runs, rollbacks that ended succeeded, runs
that lost something (no outcome message, no report, not finished) and runs
that did something twice (the cluster changed more than once, two outcomes or
two reports).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any


def table(lines: list[dict[str, Any]]) -> str:
    by_fault: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        by_fault[line["fault"]].append(line)
    rows = ["| fault | runs | succeeded | lost | doubled |", "|---|---|---|---|---|"]
    for fault, runs in by_fault.items():
        succeeded = sum(r["state"] == "succeeded" for r in runs)
        lost = sum(
            r["outcomes"] == 0 or r["reports"] == 0 or r["state"] not in ("succeeded", "failed")
            for r in runs
        )
        doubled = sum(
            r.get("applied", 1) > 1 or r["outcomes"] > 1 or r["reports"] > 1 for r in runs
        )
        rows.append(f"| {fault} | {len(runs)} | {succeeded} | {lost} | {doubled} |")
    return "\n".join(rows)


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else ".faults.jsonl"
    with open(path, encoding="utf-8") as source:
        lines = [json.loads(line) for line in source if line.strip()]
    print(table(lines))


if __name__ == "__main__":
    main()
