"""Quality targets (``targets.csv``) checked against leaderboard rows (mean over seeds) of one protocol."""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Target:
    method: str
    metric: str      # a leaderboard column, e.g. "future_bg.miou_bg" or "future_bg.miou_bg_std"
    op: str          # "min", "max", "above:<method>" (strictly) or "atleast:<method>"
    value: float
    tolerance: float
    note: str = ""


class AmbiguousRowsError(ValueError):
    """More than one leaderboard row matches a target's method under the selected protocol."""


def load_targets(path: str | Path | None = None) -> list[Target]:
    """Targets from ``path`` (default: the packaged ``targets.csv``)."""
    text = Path(path).read_text() if path else resources.files("cemnist_baselines").joinpath("targets.csv").read_text()
    out = []
    for row in csv.DictReader(text.splitlines()):
        op = row["op"]
        if op not in ("min", "max") and not (op.startswith(("above:", "atleast:")) and op.split(":", 1)[1]):
            raise ValueError(f"bad op {op!r} in targets row {row}: use min, max, above:<method> or atleast:<method>")
        out.append(Target(row["method"], row["metric"], op, float(row["value"]), float(row["tolerance"]), row.get("note") or ""))
    return out


def select_rows(rows: list[dict[str, Any]], *, protocol: dict[str, Any], device: str | None = None) -> dict[str, dict[str, Any]]:
    """The rows of ``protocol`` (a ``TrainConfig.protocol()`` dict), one per method; several rows for one method
    (other device types, other data) are an :class:`AmbiguousRowsError` naming them."""
    by_method: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("protocol") != protocol or (device is not None and r.get("device") != device):
            continue
        by_method.setdefault(r["method"], []).append(r)
    amb = {m: rs for m, rs in by_method.items() if len(rs) > 1}
    if amb:
        desc = "; ".join(f"{m}: " + ", ".join(f"[device {r['device']}, protocol {r['protocol_id']}, seeds {r['seeds']}]"
                                              for r in rs) for m, rs in sorted(amb.items()))
        raise AmbiguousRowsError(f"several leaderboard rows match the selected protocol ({desc}); choose one with "
                                 f"--device, or keep one board per results folder")
    return {m: rs[0] for m, rs in by_method.items()}


def check_targets(rows: list[dict[str, Any]], targets: list[Target], *, protocol: dict[str, Any],
                  device: str | None = None) -> list[tuple[Target, float | None, bool, str]]:
    """(target, observed, ok, message) per target; a missing method/metric is a failure naming it."""
    by_method = select_rows(rows, protocol=protocol, device=device)
    out = []
    for t in targets:
        r = by_method.get(t.method)
        if r is None:
            out.append((t, None, False, f"{t.method}.{t.metric}: no {t.method!r} run with this protocol"))
            continue
        if t.metric not in r:
            raise ValueError(f"target metric {t.metric!r} is not a leaderboard column")
        v = r.get(t.metric)
        if v is None:
            out.append((t, None, False, f"{t.method}.{t.metric}: not defined (n_seeds {r['n_seeds']})"))
            continue
        if t.op == "min":
            ok = v >= t.value - t.tolerance
            msg = f"{t.method}.{t.metric} = {v:.4f} (need >= {t.value})"
        elif t.op == "max":
            ok = v <= t.value + t.tolerance
            msg = f"{t.method}.{t.metric} = {v:.4f} (need <= {t.value})"
        else:
            kind, other = t.op.split(":", 1)
            ov = by_method.get(other, {}).get(t.metric)
            if kind == "above":
                ok = ov is not None and v > ov + t.value - t.tolerance
            else:
                ok = ov is not None and v >= ov + t.value - t.tolerance
            sign = ">" if kind == "above" else ">="
            msg = f"{t.method}.{t.metric} = {v:.4f} (need {sign} {other}'s {'—' if ov is None else f'{ov:.4f}'})"
        out.append((t, v, ok, msg))
    return out


def compare_boards(reference: dict[str, dict[str, Any]], other: dict[str, dict[str, Any]], *,
                   metrics: tuple[str, ...] = ("future_bg.miou_bg", "future_bg.first"), k: float = 3.0,
                   floor: float = 0.03) -> list[str]:
    """Where ``other``'s rows (``{method: leaderboard row}``, e.g. a re-run on another device) leave the reference
    board: a metric's mean farther than ``max(k * reference seed std, floor)`` from the reference mean, or a method
    missing on either side. Returns one message per difference (empty: the boards agree)."""
    if k < 0 or not 0 <= floor < 1:
        raise ValueError(f"k must be >= 0 and floor in [0, 1), got k={k!r}, floor={floor!r}")
    out = [f"{m}: only on the {'reference' if m in reference else 'other'} board"
           for m in sorted(set(reference) ^ set(other))]
    for m in sorted(set(reference) & set(other)):
        for key in metrics:
            if key not in reference[m] or key not in other[m]:
                raise ValueError(f"{key!r} is not a leaderboard column (e.g. future_bg.miou_bg, future_bg.first)")
            ref, val = reference[m][key], other[m][key]
            if ref is None or val is None:
                if (ref is None) != (val is None):
                    out.append(f"{m} {key}: defined on one board only (reference {ref}, other {val})")
                continue
            std = reference[m].get(f"{key}_std") or 0.0
            if not all(math.isfinite(float(x)) for x in (ref, val, std)):  # NaN is never "no difference"
                out.append(f"{m} {key}: not a finite number (reference {ref} ± {std}, other {val})")
                continue
            tol = max(k * std, floor)
            if abs(val - ref) > tol:
                out.append(f"{m} {key}: {val:.4f} against the reference {ref:.4f} (tolerance {tol:.3f})")
    return out
