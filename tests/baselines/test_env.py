"""What a result's ``env`` says about the machine that decided its bits, and when two machines count as one kind."""
from __future__ import annotations

import copy

import pytest
import torch

from cemnist_baselines.artifacts import KERNEL_ISA_FLAGS, MACHINE_KEYS, cpu_info, env_info, same_machine_kind


def test_cpu_env_names_the_cpu_and_its_kernel_isa():
    env = env_info(torch.device("cpu"))
    assert env["device"] == "cpu" and env["device_name"] == env["cpu_model"] and env["cpu_model"]
    assert env["num_threads"] == torch.get_num_threads()
    assert set(MACHINE_KEYS) - {"gpu_capability", "cudnn"} <= set(env)
    if env["cpu_isa"] is not None:  # Linux: the flags come from /proc/cpuinfo, in KERNEL_ISA_FLAGS order
        assert env["cpu_isa"] == [f for f in KERNEL_ISA_FLAGS if f in env["cpu_isa"]]
        want = ("avx512_core_amx" if {"amx_tile", "amx_bf16", "amx_int8"} <= set(env["cpu_isa"])
                else "avx512_core_bf16" if "avx512_bf16" in env["cpu_isa"] else None)
        if want is not None:
            assert env["onednn_isa"] == want


def test_onednn_isa_follows_the_flags(tmp_path):
    def fake(flags: str) -> dict:
        f = tmp_path / "cpuinfo"
        f.write_text(f"processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: {flags}\n\nprocessor\t: 1\n"
                     f"model name\t: other\nflags\t\t: sse\n")
        return cpu_info(cpuinfo=f)

    amx = fake("fpu avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8")
    assert amx["cpu_model"] == "Test CPU 9000" and amx["onednn_isa"] == "avx512_core_amx"
    assert amx["cpu_isa"] == ["amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512f", "avx2",
                              "fma"]
    assert fake("fpu avx2 fma avx512f avx512_vnni avx512_bf16")["onednn_isa"] == "avx512_core_bf16"
    assert fake("fpu avx2 fma avx512f")["onednn_isa"] == "avx512_core"
    assert fake("fpu avx2 fma")["onednn_isa"] == "avx2"
    assert fake("fpu sse4_2")["onednn_isa"] is None
    missing = cpu_info(cpuinfo=tmp_path / "absent")  # not Linux: model from platform, flags unknown
    assert missing["cpu_isa"] is None and missing["onednn_isa"] is None and missing["cpu_model"]


def test_same_machine_kind():
    env = env_info(torch.device("cpu"))
    assert same_machine_kind(env, copy.deepcopy(env)) is True
    for key, value in [("cpu_isa", ["avx2"]), ("onednn_isa", "avx512_core_amx"), ("num_threads", 64),
                       ("cpu_model", "Intel(R) Xeon(R) Platinum 8480+"), ("torch", "2.4.0")]:
        other = dict(env, **{key: value})
        assert same_machine_kind(env, other) is False, key
    old = {k: v for k, v in env.items() if k not in ("cpu_model", "cpu_isa", "onednn_isa")}
    assert same_machine_kind(env, old) is None  # a result from before these records: cannot be told


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.gpu
def test_gpu_env_names_the_gpu():
    env = env_info(torch.device("cuda"))
    assert env["device_name"] == torch.cuda.get_device_name() and env["cudnn"] == torch.backends.cudnn.version()
    assert env["gpu_capability"] == ".".join(map(str, torch.cuda.get_device_capability()))
