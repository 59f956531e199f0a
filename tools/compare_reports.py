"""Compare the summary.json numbers of two report folders (e.g. a quick report before and after a refactor).

    python tools/compare_reports.py OLD_REPORT NEW_REPORT

Every run folder under ``OLD/runs/<lab>/<run>/`` is matched with the same path under NEW; every key of its
``summary.json`` is compared, except wall-clock timings (keys with seconds, per_second, per_s, time or
throughput in them, at any depth), which measure the machine, not the code. Prints one JSON object: the keys
compared, the keys that differ (with both values), and runs or keys present on one side only. Exits 1 when anything
differs.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

TIMING = ("seconds", "per_second", "per_s", "time", "throughput", "images_per", "codes_per", "reviews_per")


def _is_timing(key: str) -> bool:
    return any(t in key for t in TIMING)


def _strip(v):
    """A value with every timing key removed, at any depth (a table row may carry its own seconds)."""
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if not _is_timing(k)}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    return v


def _same(a, b) -> bool:
    a, b = _strip(a), _strip(b)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def compare(old: Path, new: Path) -> dict:
    out = {"compared": 0, "differ": [], "only_old": [], "only_new": []}
    old_runs = {p.parent.relative_to(old) for p in old.glob("runs/*/*/summary.json")}
    new_runs = {p.parent.relative_to(new) for p in new.glob("runs/*/*/summary.json")}
    out["only_old"] += sorted(map(str, old_runs - new_runs))
    out["only_new"] += sorted(map(str, new_runs - old_runs))
    for rel in sorted(old_runs & new_runs):
        a = json.loads((old / rel / "summary.json").read_text())
        b = json.loads((new / rel / "summary.json").read_text())
        for key in sorted(set(a) | set(b)):
            if _is_timing(key):
                continue
            if key not in b:
                out["only_old"].append(f"{rel}:{key}")
            elif key not in a:
                out["only_new"].append(f"{rel}:{key}")
            else:
                out["compared"] += 1
                if not _same(a[key], b[key]):
                    out["differ"].append({"run": str(rel), "key": key, "old": a[key], "new": b[key]})
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    result = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps(result, indent=1))
    sys.exit(1 if result["differ"] or result["only_old"] else 0)
