"""Check a result produced anywhere (``cemnist-baselines validate RESULT.json [...]``).

Checks, each reported as one line when it fails:

- ``schema``: the result schema version and structure (:func:`cemnist_baselines.results.check_result`);
- ``dataset``: dataset version and the content hashes of every split the run used equal the shipped release
  manifest (``cemnist_data.release_info("cemnist")``), and the task list is the release's;
- ``protocol``: the recorded protocol is the config's protocol, the setting and mode agree with it, and a
  built-in method's protocol values are its own; a protocol equal to no named preset is reported as
  "custom protocol" (a note, not a failure: it gets its own leaderboard row);
- ``confusion``: one record in ``steps`` per task (one for joint), each record's classes are the tasks seen so
  far, and every record's 11x11 confusion holds non-negative counts summing to the evaluation pool's pixel
  count (images of the pool or of its fixed subset x canvas^2, from the manifest);
- ``metrics``: every reported per-task metric, R matrix and final number recomputed from the confusions
  (:func:`cemnist_baselines.metrics.recompute_task_metrics`, :func:`~cemnist_baselines.metrics.summarize`);
- ``wall_time``: one wall time (seconds >= 0, checked with the schema) per task record;
- ``env``: the device type a leaderboard row is keyed by agrees with the rest of ``env`` (a ``cuda`` run names
  its GPU and a CUDA build of torch; a ``cpu`` run names no GPU and its CPU as the device) and with the
  device-dependent config fields;
- ``run_id``: the run id is the hash of what identifies the run.

Files are read with :func:`cemnist_baselines.results.read_json_file` (regular files of at most
:data:`~cemnist_baselines.results.MAX_RESULT_BYTES` only); a non-finite number anywhere in a result is a
``schema`` failure naming the field.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .results import ResultError, check_result, read_json_file, results_folder, run_id

TOL = 1e-9


@dataclass
class Validation:
    """Outcome for one file: failed checks (``"check: detail"``) and notes (e.g. the protocol's preset)."""

    path: str
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the reader's own message when the file is unreadable or malformed
    result: dict[str, Any] | None = field(default=None, repr=False)  # the parsed result that was checked

    @property
    def ok(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        """One line per failed check, or one ``OK`` line with the notes."""
        if self.ok:
            return [f"OK   {self.path}" + (f" ({'; '.join(self.notes)})" if self.notes else "")]
        return [f"FAIL {self.path}: {f}" for f in self.failures]


def _close(a: Any, b: Any, where: str, out: list[str], limit: int = 3) -> None:
    """Compare nested JSON values (floats with a tolerance); append differences (at most ``limit``)."""
    if len(out) >= limit:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{where}.{k} is {'missing' if k not in a else 'not expected'}")
            else:
                _close(a[k], b[k], f"{where}.{k}", out, limit)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where} has {len(a)} entries, recomputed {len(b)}")
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                _close(x, y, f"{where}[{i}]", out, limit)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if not (math.isfinite(float(a)) and math.isclose(float(a), float(b), rel_tol=TOL, abs_tol=TOL)):
            out.append(f"{where} = {a!r}, recomputed {b!r}")
    elif a != b:
        out.append(f"{where} = {a!r}, recomputed {b!r}")


def _named_presets(d: dict[str, Any]) -> list[str]:
    from .config import PRESETS, get_config

    names = []
    for name in PRESETS:
        try:
            if get_config(name, setting=d["setting"], mode=d["mode"]).protocol() == d["protocol"]:
                names.append(name)
        except ValueError:
            continue
    return names


def validate_result(d: Any, *, name: str = "result", release: dict[str, Any] | None = None) -> Validation:
    """Run every check on a parsed result; ``release`` defaults to the shipped manifest's release info. Each
    check is one function below (dataset, protocol, confusions, metrics, wall times, env, run id); a failed
    check adds one line ``"<check>: <what failed>"`` to the validation's failures."""
    v = Validation(name)
    try:
        check_result(d, name=name)
    except ResultError as e:
        v.failures.append(f"schema: {str(e).removeprefix(name + ': ')}")
        v.error = str(e)
        return v
    if release is None:
        from .data import dataset_info

        release = dataset_info(path="cemnist")
    bad = _check_dataset(d, release)
    if bad:
        v.failures.append("dataset: " + "; ".join(bad))
    bad = _check_protocol(d)
    if bad:
        v.failures.append("protocol: " + "; ".join(bad))
    else:
        presets = _named_presets(d)
        v.notes.append(f"preset {'/'.join(presets)}" if presets else "custom protocol")
    from .registry import BUILTIN_METHODS

    if d["method"] not in BUILTIN_METHODS:
        v.notes.append(f"plug-in method {d.get('method_source', d['method'])!r} (its method_protocol is not checked)")
    bad = _check_confusions(d, release)
    if bad:
        v.failures.append("confusion: " + "; ".join(bad[:4]) + (f" (+{len(bad) - 4} more)" if len(bad) > 4 else ""))
    else:  # the metrics are recomputed only from usable confusions
        diffs = _check_metrics(d)
        if diffs:
            v.failures.append("metrics: " + "; ".join(diffs))
    if len(d["wall_time_per_task_s"]) != len(d["steps"]):
        v.failures.append(f"wall_time: {len(d['wall_time_per_task_s'])} wall times for {len(d['steps'])} steps")
    bad = _env_failures(d["env"], d["config"])  # what a row is keyed by (the device type) agrees with the record
    if bad:
        v.failures.append("env: " + "; ".join(bad))
    if d.get("run_id") != run_id(d):
        v.failures.append(f"run_id: {d.get('run_id')!r} is not the hash of method, seed, config, dataset, "
                          f"package version and commit ({run_id(d)!r})")
    return v


def _eval_split(d: dict[str, Any]) -> Any:
    return d["evaluation"].get("split") if isinstance(d["evaluation"], dict) else None


def _check_dataset(d: dict[str, Any], release: dict[str, Any]) -> list[str]:
    """The release version, the tasks and the content hash of every split the run used."""
    from .data import config_name, eval_pool_configs

    tasks, mode, split = d["tasks"], d["mode"], _eval_split(d)
    T = len(tasks)
    bad: list[str] = []
    if d["dataset"].get("version") != release["version"]:
        bad.append(f"version {d['dataset'].get('version')!r} is not the release's {release['version']!r}")
    if [list(map(int, t)) for t in release["tasks"]] != tasks:
        bad.append(f"tasks {tasks} are not the release's {release['tasks']}")
    got = d["dataset"].get("content_sha256", {})
    want = {}
    if split in ("test", "validation") and mode in ("overlap", "disjoint"):
        used = [(config_name(mode, t), "train") for t in range(T)] + [(c, split) for c in eval_pool_configs(mode, T, split)]
        for c, s in used:
            entry = release["configs"].get(c, {}).get(s)
            if entry is None:
                bad.append(f"the release has no {c}/{s}")
            else:
                want[f"{c}/{s}"] = entry["content_sha256"]
    for k in sorted(set(got) | set(want)):
        if k not in want:
            bad.append(f"unexpected split {k}")
        elif k not in got:
            bad.append(f"no content hash for {k}")
        elif got[k] != want[k]:
            bad.append(f"content hash of {k} is {str(got[k])[:12]}…, the release manifest has {want[k][:12]}…")
    return bad


def _check_protocol(d: dict[str, Any]) -> list[str]:
    """The protocol is the config's, agrees with setting / mode / evaluation split, and a built-in method's
    protocol values are its own."""
    from .config import TrainConfig
    from .registry import BUILTIN_METHODS, METHODS

    split = _eval_split(d)
    bad: list[str] = []
    try:
        cfg = TrainConfig.from_dict(d["config"])
    except (ValueError, TypeError) as e:
        bad.append(f"config is not a valid TrainConfig ({e})")
        cfg = None
    if cfg is not None:
        diff = sorted(k for k in set(cfg.protocol()) | set(d["protocol"]) if cfg.protocol().get(k) != d["protocol"].get(k))
        if diff:
            bad.append(f"protocol differs from the config's in {diff}")
    for k in ("setting", "mode"):
        if d["protocol"].get(k) != d[k]:
            bad.append(f"{k} {d[k]!r} but protocol.{k} {d['protocol'].get(k)!r}")
    if split != d["protocol"].get("eval_split"):
        bad.append(f"evaluation.split {split!r} but protocol.eval_split {d['protocol'].get('eval_split')!r}")
    mp = d.get("method_protocol", {})
    if d["method"] in BUILTIN_METHODS and mp != METHODS[d["method"]].protocol_values():
        bad.append(f"method_protocol {mp} is not the built-in {d['method']!r}'s {METHODS[d['method']].protocol_values()}")
    return bad


def _check_confusions(d: dict[str, Any], release: dict[str, Any]) -> list[str]:
    """One record per task (one for joint), each confusion a matrix of non-negative integers summing to the
    pool's pixels, and the classes seen by each record."""
    from .data import eval_pool_configs

    tasks, mode, split = d["tasks"], d["mode"], _eval_split(d)
    T = len(tasks)
    bad: list[str] = []
    records = d["steps"]  # one per task (cemnist_baselines.results)
    joint = bool(d.get("joint"))
    n_records = 1 if joint else T
    if len(records) != n_records:
        bad.append(f"{len(records)} steps, expected {n_records}")
    ev = d["evaluation"]
    canvas = int(release["spec"]["canvas"])
    pool_rows = None
    if split in ("test", "validation") and mode in ("overlap", "disjoint"):
        pool_rows = sum(int(release["configs"][c][split]["num_rows"]) for c in eval_pool_configs(mode, T, split))
    max_test = d["protocol"].get("max_test")
    if pool_rows is not None:
        n_img = pool_rows if max_test is None else min(int(max_test), pool_rows)
        pixels = n_img * canvas * canvas
        if ev.get("num_images") != n_img or ev.get("num_pixels") != pixels:
            bad.append(f"evaluation has {ev.get('num_images')} images / {ev.get('num_pixels')} pixels, the pool "
                       f"gives {n_img} / {pixels}")
    else:
        pixels = ev.get("num_pixels")
    for i, s in enumerate(records):
        conf = s["confusion"]
        flat = [x for row in conf for x in row]
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in flat):
            bad.append(f"steps[{i}].confusion holds entries that are not non-negative integers")
            continue
        if sum(flat) != pixels:
            bad.append(f"steps[{i}].confusion sums to {sum(flat)}, the pool has {pixels} pixels")
        want_seen = [c for t in tasks[: (T if joint else i + 1)] for c in t]
        if s.get("classes_seen") != want_seen:
            bad.append(f"steps[{i}].classes_seen {s.get('classes_seen')} should be {want_seen}")
    return bad


def _check_metrics(d: dict[str, Any]) -> list[str]:
    """Every reported number recomputed from the confusions: per task record, ``R`` and ``final``."""
    from .metrics import recompute_task_metrics, summarize

    tasks = d["tasks"]
    T = len(tasks)
    diffs: list[str] = []
    again = []
    for i, s in enumerate(d["steps"]):
        r = recompute_task_metrics(s["confusion"], s["classes_seen"])
        for k in ("iou_per_label", "miou_bg", "miou", "views"):
            _close(s.get(k), r[k], f"steps[{i}].{k}", diffs)
        again.append(dict(s, **r))
    summ = summarize(again, tasks, seen_upto=[T - 1] if bool(d.get("joint")) else None)
    _close(d["R"], summ["R"], "R", diffs)
    _close(d["final"], summ["final"], "final", diffs)
    return diffs


def _env_failures(env: dict[str, Any], config: Any) -> list[str]:
    """Why ``env.device`` disagrees with the rest of ``env`` and with the config as resolved for that device."""
    from .config import TrainConfig

    dev = env.get("device")
    bad = []
    gpu = [k for k in ("gpu_capability", "cudnn") if k in env]
    if dev == "cuda":
        if env.get("cuda") is None:
            bad.append("device 'cuda' but env.cuda is None (a torch build without CUDA cannot have run on a GPU)")
        if "gpu_capability" not in env:
            bad.append("device 'cuda' but no GPU is recorded (env.gpu_capability)")
        if "cpu_model" in env and env.get("device_name") == env["cpu_model"]:
            bad.append(f"device 'cuda' but env.device_name is the CPU ({env['cpu_model']!r})")
    elif dev == "cpu":
        if gpu:
            bad.append(f"device 'cpu' but the env records a GPU ({', '.join(gpu)})")
        if "cpu_model" in env and env.get("device_name") != env["cpu_model"]:
            bad.append(f"device 'cpu' but env.device_name {env.get('device_name')!r} is not the CPU "
                       f"{env['cpu_model']!r}")
    else:
        bad.append(f"device {dev!r} is not a device type this package runs on (cpu, cuda)")
    if not bad and isinstance(config, dict):
        try:
            as_run = TrainConfig.from_dict(config).resolved(dev).to_dict()
        except (ValueError, TypeError):
            return bad  # reported by the protocol check
        diff = sorted(k for k in config if as_run.get(k) != config[k])
        if diff:
            bad.append(f"config fields {diff} are not what a {dev} run records")
    return bad


def validate_file(path: str | os.PathLike[str], *, release: dict[str, Any] | None = None) -> Validation:
    """Validate one result JSON file (unreadable or damaged JSON, a FIFO, a device or a file larger than
    :data:`~cemnist_baselines.results.MAX_RESULT_BYTES` is a ``schema`` failure); ``result`` holds the
    parsed result that was checked."""
    p = Path(path)
    try:
        d = read_json_file(p)
    except ResultError as e:
        return Validation(str(p), failures=[f"schema: not a readable JSON result ({str(e).removeprefix(f'{p}: ')})"],
                          error=str(e))
    v = validate_result(d, name=str(p), release=release)
    v.result = d
    return v


def result_files(paths: list[str | os.PathLike[str]]) -> list[Path]:
    """Files named, plus the result JSONs in folders named; a missing path is a FileNotFoundError."""
    from .results import is_result_file

    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += [f for f in sorted(p.glob("*.json")) if is_result_file(f)]
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p} does not exist")
    return out


def load_validated(paths: Sequence[str | os.PathLike[str]], *,
                   release: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], list[Validation]]:
    """The one validating loader of result folders: every result file in ``paths`` (files, or folders of
    ``*.json``) checked as ``cemnist-baselines validate`` checks it. Returns (the results that pass, each the
    very object that was checked, with ``_path``; the :class:`~cemnist_baselines.validate.Validation` of every
    refused file). A path that does not exist is a FileNotFoundError."""
    files = result_files(list(paths))
    if files and release is None:
        from .data import dataset_info

        release = dataset_info(path="cemnist")
    ok: list[dict[str, Any]] = []
    refused: list[Validation] = []
    for p in files:
        v = validate_file(p, release=release)
        if v.ok and v.result is not None:
            ok.append(dict(v.result, _path=str(p)))
        else:
            refused.append(v)
    return ok, refused


def refusal_message(refused: Sequence[Validation]) -> str:
    """One line per refused file (its path and what failed) and the fix."""
    lines = [v.error or f"{v.path}: does not validate ({'; '.join(v.failures)})" for v in refused[:5]]
    if len(refused) > 5:
        lines.append(f"... and {len(refused) - 5} more")
    return ("\n".join(lines) + "\nonly results that pass `cemnist-baselines validate` are read: delete or move "
            "the file(s) named, or rerun those runs")


def load_valid_results(results_dir: str | os.PathLike[str], *,
                       release: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every result in ``results_dir`` through :func:`load_validated` (``*.json`` files of the result schema;
    other JSON files are skipped): what ``leaderboard``, ``run``'s board, ``targets``, ``compare``, ``report``
    and ``progress`` read. A file that fails any check is a :class:`ResultError` naming it and what failed:
    readers never use a result that ``validate`` refuses."""
    root = results_folder(results_dir)
    ok, refused = load_validated([root], release=release)
    if refused:
        raise ResultError(refusal_message(refused))
    return ok
