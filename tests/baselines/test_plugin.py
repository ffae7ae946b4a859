"""Methods from outside the package: module:Class references, the entry-point group, precise errors, and
the worked example (examples/my_method.py) through the tiny preset and the leaderboard."""
from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from cemnist_baselines.cli import main
from cemnist_baselines.losses import mib_kd_loss
from cemnist_baselines.methods import Method
from cemnist_baselines.registry import get_method
from cemnist_baselines.registry import ENTRY_POINT_GROUP, method_source, resolve_method

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path holding plug-in modules (and, for entry points, an installed distribution's
    metadata: importlib.metadata finds ``*.dist-info`` folders on sys.path)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "plug_ok.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from cemnist_baselines.methods import Method, KD

        @dataclass(frozen=True)
        class Mine(Method):
            name: str = "mine"

        @dataclass(frozen=True)
        class SameName(Method):
            name: str = "mine"

        @dataclass(frozen=True)
        class Nameless(Method):
            pass

        @dataclass(frozen=True)
        class Taken(Method):
            name: str = "kd"

        class NotAMethod:
            pass

        instance = KD("kd_instance", uses_old_model=True)
        number = 3
    '''))
    (tmp_path / "plug_broken.py").write_text("import a_module_that_does_not_exist_xyz\n")
    yield tmp_path
    for m in ("plug_ok", "plug_broken"):
        sys.modules.pop(m, None)


def _install_entry_points(folder: Path, lines: str) -> None:
    dist = folder / "cemnist_fake_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cemnist-fake-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}\n")


def test_reference_to_a_method_class_or_instance(plugin_dir):
    m = get_method("plug_ok:Mine")
    assert isinstance(m, Method) and m.name == "mine" and method_source(m) == "plug_ok:Mine"
    assert get_method("plug_ok:Nameless").name == "nameless"  # no default name: the class name, lower case
    assert get_method("plug_ok:instance").name == "kd_instance"


@pytest.mark.parametrize("ref, err", [
    ("no_such_module_xyz:Thing", "module 'no_such_module_xyz' not found"),
    ("plug_broken:Thing", "importing module 'plug_broken' failed: No module named 'a_module_that_does_not_exist_xyz'"),
    ("plug_ok:Missing", "module 'plug_ok' has no attribute 'Missing'"),
    ("plug_ok:NotAMethod", "NotAMethod is not a Method (class 'NotAMethod')"),
    ("plug_ok:number", "number is not a Method (object 'int')"),
    ("plug_ok:Taken", "name 'kd' is taken by the built-in method 'kd'"),
    ("ewc", "unknown method 'ewc'"),
    ("plug_ok:", "expected a built-in name"),
])
def test_bad_references_are_precise_errors(plugin_dir, ref, err):
    with pytest.raises(ValueError) as e:
        get_method(ref)
    assert err in str(e.value)


def test_entry_point_group_registers_methods_by_name(plugin_dir):
    _install_entry_points(plugin_dir, "mine = plug_ok:Mine\nwrong = plug_ok:Mine\nkd = plug_ok:Taken")
    assert get_method("mine").name == "mine"
    with pytest.raises(ValueError, match="entry point 'wrong' .* gives a method named 'mine'"):
        get_method("wrong")
    assert get_method("kd") is get_method("kd")  # built-ins win; a plug-in cannot shadow them
    with pytest.raises(ValueError, match="name 'mine' is taken by the installed plug-in 'plug_ok:Mine'"):
        resolve_method("plug_ok:SameName")
    with pytest.raises(ValueError, match=r"unknown method 'nope'; choose one of .*an installed plug-in \['kd', 'mine', 'wrong'\]"):
        get_method("nope")


def test_example_loss_is_kd_at_temperature_one():
    sys.path.insert(0, str(ROOT))
    try:
        from examples.my_method import KDTemperature
    finally:
        sys.path.remove(str(ROOT))
    g = torch.Generator().manual_seed(0)
    z, t = torch.randn(2, 5, 3, 3, generator=g, dtype=torch.float64), torch.randn(2, 3, 3, 3, generator=g, dtype=torch.float64)
    y = torch.zeros(2, 3, 3, dtype=torch.long)
    base = torch.nn.functional.cross_entropy(z, y)
    assert KDTemperature(temperature=1.0).loss(z, y, t, c_old=3, kd_lambda=10).item() == pytest.approx(
        (base + 10 * mib_kd_loss(z, t)).item(), rel=1e-12)
    # T = 2: softened targets and the T^2 factor
    q, logp = torch.softmax(t / 2, 1), torch.log_softmax(z[:, :3] / 2, 1)
    want = base + 10 * 4 * (-(q * logp).sum(1).mean() / 3)
    assert KDTemperature().loss(z, y, t, c_old=3, kd_lambda=10).item() == pytest.approx(want.item(), rel=1e-12)


def test_example_runs_through_the_tiny_preset_and_the_leaderboard(tmp_path, cemnist_cache, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the README's instructions run from the repository root
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(ROOT))])
    out = tmp_path / "mine"
    rc = main(["run", "--method", "examples.my_method:KDTemperature", "naive", "--preset", "tiny", "--device", "cpu",
               "--epochs", "1", "--max-train", "16", "--max-test", "8", "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    r = json.loads((out / "kd_t2-2-2-overlap-seed0.json").read_text())
    assert r["method"] == "kd_t2" and r["method_source"] == "examples.my_method:KDTemperature"
    assert r["method_protocol"] == {"temperature": 2.0}
    assert json.loads((out / "naive-2-2-overlap-seed0.json").read_text())["shared_task0"]  # one task-0 model
    assert main(["leaderboard", "--results", str(out)]) == 0
    board = (out / "LEADERBOARD.md").read_text()
    assert "| kd_t2 | cpu | tiny | 1 |" in board and "| naive | cpu | tiny | 1 |" in board
    assert "method.temperature" in (out / "leaderboard.csv").read_text().splitlines()[0]


def test_cli_reports_bad_references(tmp_path, capsys, plugin_dir):
    assert main(["run", "--method", "plug_ok:NotAMethod", "--preset", "tiny", "--out", str(tmp_path / "o")]) == 2
    assert "is not a Method" in capsys.readouterr().err
    assert main(["run", "--method", "plug_ok:Taken", "--preset", "tiny", "--out", str(tmp_path / "o")]) == 2
    assert "name 'kd' is taken" in capsys.readouterr().err


@pytest.mark.parametrize("cls, div", [("PLOPDiv1e3", 1_000), ("PLOPDiv1e4", 10_000), ("PLOPDiv1e5", 100_000)])
def test_scaled_plop_plugins_are_plop_with_smaller_pod_factors(cls, div, monkeypatch):
    """examples/plop_scaled.py (the search of docs/PROTOCOL.md section 6): only the name and the two POD
    factors differ from the built-in PLOP, and they are recorded as protocol values."""
    import dataclasses

    from cemnist_baselines.registry import METHODS

    monkeypatch.syspath_prepend(str(ROOT))
    m = resolve_method(f"examples.plop_scaled:{cls}")
    ref = METHODS["plop"]
    assert dataclasses.asdict(m) == dataclasses.asdict(dataclasses.replace(
        ref, name=m.name, pod_factor=ref.pod_factor / div, pod_logits_factor=ref.pod_logits_factor / div))
    assert m.name not in METHODS and m.protocol_values()["pod_factor"] == pytest.approx(0.01 / div, rel=1e-15)


def test_plop_tuned_is_the_chosen_search_point(monkeypatch):
    """The built-in plop_tuned is PLOP with both POD factors divided by PLOP_TUNED_DIVISOR, the search point
    examples.plop_scaled:PLOPDiv1e4 under another name (docs/PROTOCOL.md section 6)."""
    import dataclasses

    from cemnist_baselines.methods import PLOP_TUNED_DIVISOR
    from cemnist_baselines.registry import METHODS

    monkeypatch.syspath_prepend(str(ROOT))
    chosen = resolve_method("examples.plop_scaled:PLOPDiv1e4")
    tuned, ref = METHODS["plop_tuned"], METHODS["plop"]
    assert PLOP_TUNED_DIVISOR == 10_000
    assert dataclasses.asdict(tuned) == dataclasses.asdict(dataclasses.replace(chosen, name="plop_tuned"))
    assert tuned.protocol_values() == dict(ref.protocol_values(), pod_factor=ref.pod_factor / 10_000,
                                           pod_logits_factor=ref.pod_logits_factor / 10_000)
