"""Quality targets of issue 3 §6 (``targets.csv``), checked against leaderboard rows (mean over seeds)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Target:
    method: str
    metric: str
    op: str          # "min", "max" or "above:<method>"
    value: float
    tolerance: float
    note: str = ""


def load_targets(path: str | Path | None = None) -> list[Target]:
    """Targets from ``path`` (default: the packaged ``targets.csv``)."""
    text = Path(path).read_text() if path else resources.files("cemnist_baselines").joinpath("targets.csv").read_text()
    out = []
    for row in csv.DictReader(text.splitlines()):
        op = row["op"]
        if op not in ("min", "max") and not op.startswith("above:"):
            raise ValueError(f"bad op {op!r} in targets row {row}")
        out.append(Target(row["method"], row["metric"], op, float(row["value"]), float(row["tolerance"]), row.get("note") or ""))
    return out


def check_targets(rows: list[dict[str, Any]], targets: list[Target], *, setting: str = "2-2", mode: str = "overlap",
                  preset: str = "default") -> list[tuple[Target, float | None, bool, str]]:
    """(target, observed mean, ok, message) per target; a missing method/metric is a failure."""
    by_method = {r["method"]: r for r in rows if r["setting"] == setting and r["mode"] == mode and r["preset"] == preset}
    out = []
    for t in targets:
        r = by_method.get(t.method)
        v = None if r is None else r.get(t.metric)
        if v is None:
            out.append((t, None, False, f"{t.method}.{t.metric}: no result"))
            continue
        if t.op == "min":
            ok = v >= t.value - t.tolerance
            msg = f"{t.method}.{t.metric} = {v:.4f} (need >= {t.value} - {t.tolerance})"
        elif t.op == "max":
            ok = v <= t.value + t.tolerance
            msg = f"{t.method}.{t.metric} = {v:.4f} (need <= {t.value} + {t.tolerance})"
        else:
            other = t.op.split(":", 1)[1]
            ov = by_method.get(other, {}).get(t.metric)
            ok = ov is not None and v > ov + t.value - t.tolerance
            msg = f"{t.method}.{t.metric} = {v:.4f} (need > {other}'s {ov})"
        out.append((t, v, ok, msg))
    return out
