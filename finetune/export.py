"""Export a trained adapter for vLLM: adapter dir with a model card, or a merged model.

The adapter directory holds `adapter_model.safetensors`, `adapter_config.json` and a README.md
model card (base model, data summary, eval results). `merge=True` writes base + adapter merged
into a plain HF model directory (with the base's tokenizer and chat template) for
single-adapter deployments. Both are written to a temp directory and renamed into place.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "generation_config.json",
)


def model_card(base: str, data_summary: dict[str, Any], eval_results: dict[str, Any], lora_r: int) -> str:
    def table(d: dict[str, Any]) -> str:
        flat = {
            f"{k}.{k2}" if isinstance(v, dict) else k: v2
            for k, v in d.items()
            for k2, v2 in (v.items() if isinstance(v, dict) else [(k, v)])
        }
        rows = "\n".join(f"| {k} | {v} |" for k, v in flat.items() if not isinstance(v, list | dict))
        return "| metric | value |\n|---|---|\n" + rows if rows else "(none recorded)"

    return f"""---
base_model: {base}
library_name: peft
tags: [lora, tool-use, warden]
---
# Tool-use LoRA adapter (Warden)

Base model: `{base}`. Tool-call format: Hermes `<tool_call>{{"name": ..., "arguments": {{...}}}}</tool_call>`
in the base model's chat template; serve with vLLM `--enable-lora --max-lora-rank {max(8, lora_r)}
--enable-auto-tool-choice --tool-call-parser hermes`.

## Data
{table(data_summary)}

## Evaluation (held-out data, served through the chat template + hermes parser)
```json
{json.dumps(eval_results, indent=2)}
```
"""


def _swap_in(tmp: Path, out: Path) -> None:
    tmp.chmod(0o755)  # mkdtemp makes it 0700
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def export_adapter(run_dir: Path, out: Path) -> Path:
    """Copy the run's adapter to `out` with a model card built from the run's files."""
    adapter = run_dir / "adapter"
    if not (adapter / "adapter_model.safetensors").is_file():
        raise FileNotFoundError(f"{adapter}: no adapter_model.safetensors (train first)")
    cfg = json.loads((run_dir / "config.json").read_text())
    data_summary = _read(run_dir / "data_summary.json") or _read(Path(cfg["train_file"]).parent / "summary.json")
    eval_results = _read(run_dir / "eval.json") or {}
    eval_results = {k: v for k, v in eval_results.items() if k != "rows"}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        for f in ("adapter_model.safetensors", "adapter_config.json"):
            shutil.copy2(adapter / f, tmp / f)
        (tmp / "README.md").write_text(
            model_card(cfg["base"], data_summary or {}, _strip_rows(eval_results), cfg["lora_r"])
        )
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def export_merged(base: Path, adapter: Path, out: Path) -> Path:
    """base + adapter merged, bf16 safetensors, with the base's tokenizer and chat template."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload().to(torch.bfloat16)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        merged.save_pretrained(tmp, safe_serialization=True)
        for f in _TOKENIZER_FILES:
            if (base / f).is_file():
                shutil.copy2(base / f, tmp / f)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _strip_rows(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _strip_rows(v) for k, v in d.items() if k != "rows"}
    return d
