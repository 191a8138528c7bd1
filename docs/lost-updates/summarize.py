"""Print a Markdown table of every run summary in results/*.json.

/tmp/probe/bin/python docs/lost-updates/summarize.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cell(d: dict, k: str) -> str:
    v = d.get(k)
    return "n/a" if v is None else str(v)


def main() -> None:
    rows = []
    for f in sorted((HERE / "results").glob("*.json")):
        d = json.loads(f.read_text())
        rows.append((d["fix"], d["seed"], f.name, d))
    rows.sort(key=lambda r: (r[0], r[1]))
    print(
        "| FIX | seed | kills | stored src | counted | duplicates (%) | lost incr. (keys) "
        "| ledger gaps | skipped src offsets | commits | commits w/ unsent (max) "
        "| commits exposed (max) | settled | crashes | file |"
    )
    print("|" + "---|" * 15)
    for fix, seed, name, d in rows:
        crashes = ",".join(f"{k}x{v}" for k, v in (d.get("crash_reasons") or {}).items()) or "-"
        print(
            f"| {fix} | {seed} | {len(d['kills'])} | {d['produced']} | {d['counted']} "
            f"| {d['duplicates']} ({d['dup_rate_pct']}) "
            f"| {d['lost_increments']} ({d['lost_keys']}) | {d['ledger_gaps']} "
            f"| {cell(d, 'skipped_offsets')} "
            f"| {cell(d, 'commits_seen')} "
            f"| {cell(d, 'commits_with_unsent')} ({cell(d, 'max_unsent_at_commit')}) "
            f"| {cell(d, 'commits_exposed')} ({cell(d, 'max_exposed_at_commit')}) "
            f"| {d['settled']} | {crashes} | {name} |"
        )


def totals() -> None:
    by_fix: dict[int, list[dict]] = {}
    for f in sorted((HERE / "results").glob("*.json")):
        d = json.loads(f.read_text())
        by_fix.setdefault(d["fix"], []).append(d)
    print()
    print(
        "| FIX | runs | runs with loss | increments lost | dup % min / median / max | "
        "runs with skipped src offsets | commits exposed / measured |"
    )
    print("|---|---|---|---|---|---|---|")
    for fix, ds in sorted(by_fix.items()):
        dups = sorted(d["dup_rate_pct"] for d in ds)
        med = (
            dups[len(dups) // 2]
            if len(dups) % 2
            else (dups[len(dups) // 2 - 1] + dups[len(dups) // 2]) / 2
        )
        meas = [d for d in ds if d.get("commits_exposed") is not None]
        print(
            f"| {fix} | {len(ds)} | {sum(1 for d in ds if d['lost_increments'])} "
            f"| {sum(d['lost_increments'] for d in ds)} "
            f"| {dups[0]} / {round(med, 2)} / {dups[-1]} "
            f"| {sum(1 for d in ds if d.get('skipped_offsets'))} of "
            f"{sum(1 for d in ds if d.get('skipped_offsets') is not None)} "
            f"| {sum(d['commits_exposed'] for d in meas)} / "
            f"{sum(d['commits_seen'] or 0 for d in meas)} (in {len(meas)} runs) |"
        )


if __name__ == "__main__":
    main()
    totals()
