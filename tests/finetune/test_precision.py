"""Precision and vLLM dtype choices through their inputs: an injected capability, both kinds of CPU."""

from pathlib import Path

import pytest

from finetune.precision import (
    Capability,
    PrecisionError,
    choose,
    cpu_capability,
    isa_cap,
    probe,
    read_cpuinfo,
    serving_dtype,
    vllm_dtype,
)

ZEN4 = Capability("cpu", "AMD EPYC 9R14", ("avx2", "avx512f", "avx512_bf16"), True, "cpuinfo: avx512_bf16")
AVX2 = Capability("cpu", "AMD EPYC 7R13", ("avx2",), False, "cpuinfo: no avx512_bf16/amx_bf16")
OLD_GPU = Capability("cuda", "Tesla T4", (), False, "torch.cuda.is_bf16_supported: False")
CPUINFO = """processor	: 0
vendor_id	: AuthenticAMD
model name	: {model}
flags		: {flags}

processor	: 1
model name	: {model}
flags		: {flags}
"""


def test_auto_is_bf16_where_native_and_fp32_elsewhere() -> None:
    assert choose("auto", ZEN4).value == "bf16"
    fast = choose("auto", AVX2)
    assert fast.value == "fp32"
    assert "AMD EPYC 7R13" in fast.reason and "no native bf16" in fast.reason


def test_explicit_bf16_without_native_support_is_refused_unless_forced() -> None:
    with pytest.raises(PrecisionError, match=r"~80x slower.*precision: auto.*force_precision"):
        choose("bf16", AVX2)
    forced = choose("bf16", AVX2, force=True)
    assert forced.value == "bf16" and "forced" in forced.reason
    assert choose("bf16", ZEN4).value == "bf16"


def test_fp32_is_honoured_everywhere_and_unknown_values_are_named() -> None:
    assert {choose("fp32", c).value for c in (ZEN4, AVX2, OLD_GPU)} == {"fp32"}
    with pytest.raises(PrecisionError, match="'fp16'"):
        choose("fp16", ZEN4)


def test_serving_dtype_follows_native_bf16_unless_overridden() -> None:
    assert serving_dtype("auto", ZEN4).value == "bfloat16"
    assert serving_dtype("auto", AVX2).value == "float32"
    assert serving_dtype("auto", OLD_GPU).value == "float16"
    assert serving_dtype("bfloat16", AVX2).value == "bfloat16"  # an override is an override
    with pytest.raises(PrecisionError, match="'bf16'"):
        serving_dtype("bf16", AVX2)


@pytest.mark.parametrize(
    ("flags", "onednn", "native"),
    [
        ("fpu avx2 avx512f avx512_bf16", True, True),  # Zen 4 / Sapphire Rapids
        ("fpu avx2 amx_bf16 amx_tile", None, True),  # oneDNN not asked (the serving path)
        ("fpu avx2 fma", None, False),  # AVX2 only: the slow kind
        ("fpu avx2 avx512f avx512bw", True, False),  # oneDNN "supports" bf16 on AVX-512 by emulating it
        ("fpu avx2 avx512f avx512_bf16", False, False),  # a flag torch's oneDNN cannot use
    ],
)
def test_cpu_capability_needs_a_bf16_flag_and_onednn_agreeing(
    tmp_path: Path, flags: str, onednn: bool | None, native: bool
) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO.format(model="AMD EPYC 7R13 Processor", flags=flags))
    cap = cpu_capability(read_cpuinfo(info), onednn)
    assert cap.native_bf16 is native
    assert cap.model == "AMD EPYC 7R13 Processor"
    assert set(cap.flags) <= set(flags.split()) and "avx2" in cap.flags
    assert cap.model in cap.describe()


def test_without_cpuinfo_onednn_decides(tmp_path: Path) -> None:
    assert read_cpuinfo(tmp_path / "missing") is None
    assert cpu_capability(None, True).native_bf16 and not cpu_capability(None, None).native_bf16


@pytest.mark.parametrize(
    ("env", "capped"),
    [
        ({}, None),
        ({"ONEDNN_MAX_CPU_ISA": "avx2"}, "ONEDNN_MAX_CPU_ISA=AVX2"),  # oneDNN reads it case-insensitively
        ({"DNNL_MAX_CPU_ISA": "AVX512_CORE"}, "DNNL_MAX_CPU_ISA=AVX512_CORE"),  # AVX-512 without its bf16
        ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, None),
        ({"ONEDNN_MAX_CPU_ISA": "ALL", "DNNL_MAX_CPU_ISA": "AVX2"}, None),  # the first one set wins
        ({"ONEDNN_MAX_CPU_ISA": " "}, None),
    ],
)
def test_an_isa_cap_below_bf16_makes_any_cpu_the_slow_kind(env: dict[str, str], capped: str | None) -> None:
    assert isa_cap(env) == capped
    cap = cpu_capability(("AMD EPYC 9R14", {"avx2", "avx512f", "avx512_bf16"}), True, isa_cap(env))
    assert cap.native_bf16 is (capped is None)
    if capped is not None:
        assert capped in cap.evidence
        assert choose("auto", cap).value == "fp32" and serving_dtype("auto", cap).value == "float32"
        with pytest.raises(PrecisionError, match="caps oneDNN below bf16"):
            choose("bf16", cap)


def test_probe_honours_the_cap_of_the_environment_it_is_given() -> None:
    assert not probe("cpu", with_torch=False, env={"ONEDNN_MAX_CPU_ISA": "AVX2"}).native_bf16


def test_probe_reads_this_machine_without_torch() -> None:
    cap = probe("cpu", with_torch=False, env={})
    info = read_cpuinfo()
    assert cap.device == "cpu" and "oneDNN" not in cap.evidence
    if info is not None:
        assert cap.model == info[0] and cap.native_bf16 is any(f in info[1] for f in ("avx512_bf16", "amx_bf16"))


def test_vllm_dtype_per_install_device() -> None:
    assert vllm_dtype("auto", "cpu", AVX2).value == "float32"
    assert vllm_dtype("auto", "cpu", ZEN4).value == "bfloat16"
    assert vllm_dtype("auto", "gpu").value == "auto"  # vLLM decides on a GPU (no CUDA torch in this env)
    assert vllm_dtype("float16", "gpu").value == "float16"
    with pytest.raises(PrecisionError):
        vllm_dtype("half", "gpu")
