"""Base-model and adapter directories as vLLM will serve them.

Owns: checking a base model directory (HF layout with a chat template), choosing the vLLM
tool-call parser that reads its template's calls, checking that a LoRA adapter fits its base
(an adapter for another base is refused with the reason), and the ``--max-lora-rank`` to serve.

Never: loads weights (only JSON headers are read).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.errors import ServeError

DEFAULT_BASE = Path.home() / ".cache" / "warden" / "models" / "SmolLM2-135M-Instruct"
"""Where `warden model fetch` puts the default base model."""
VLLM_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The values vLLM accepts for --max-lora-rank."""
DEFAULT_MAX_LORA_RANK = 16
"""Room for runtime-loaded adapters up to rank 16 (finetune's default config trains r=16)."""
TOOL_PARSERS = {"<tool_call>": "hermes", "<|python_tag|>": "llama3_json", "[TOOL_CALLS]": "mistral"}
"""A marker in the chat template -> the vLLM tool-call parser that reads that template's calls."""


class BaseModelError(ValueError):
    """A base model directory that cannot be used; the message names the file."""


def check_base(model_dir: Path) -> None:
    """Raise BaseModelError unless `model_dir` is an HF model directory with a chat template."""
    if not (model_dir / "config.json").is_file():
        raise BaseModelError(f"{model_dir}: not a model directory (no config.json)")
    if (model_dir / "chat_template.jinja").is_file():
        return
    cfg = model_dir / "tokenizer_config.json"
    if cfg.is_file() and '"chat_template"' in cfg.read_text():
        return
    raise BaseModelError(
        f"{model_dir}: no chat template (neither chat_template.jinja nor tokenizer_config.json:chat_template)"
    )


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    name: str
    path: Path
    rank: int


def check_base_dir(base: Path) -> Path:
    base = base.expanduser()
    if not base.is_dir():
        raise ServeError(f"base model directory {base} does not exist (`warden model fetch` prepares the default)")
    try:
        check_base(base)
    except BaseModelError as exc:
        raise ServeError(str(exc)) from exc
    return base.resolve()


def tool_parser_for(base: Path) -> str:
    """The vLLM tool-call parser for the base model's chat template."""
    template = base / "chat_template.jinja"
    text = template.read_text() if template.is_file() else (base / "tokenizer_config.json").read_text()
    for marker, parser in TOOL_PARSERS.items():
        if marker in text:
            return parser
    raise ServeError(
        f"{base}: the chat template has no tool-call format Warden knows ({', '.join(TOOL_PARSERS)}); "
        "pass --tool-parser NAME (a vLLM tool parser that reads this model's calls)"
    )


def _safetensors_shapes(path: Path) -> dict[str, list[int]]:
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header: dict[str, Any] = json.loads(f.read(size))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


def check_adapter(name: str, path: Path, base: Path) -> AdapterSpec:
    """A LoRA adapter directory that fits `base`, or ServeError saying why not."""
    path = path.expanduser()
    config_file, weights = path / "adapter_config.json", path / "adapter_model.safetensors"
    if not config_file.is_file():
        raise ServeError(f"adapter {name!r}: {path} is not a LoRA adapter directory (no adapter_config.json)")
    if not weights.is_file():
        raise ServeError(f"adapter {name!r}: {path} has no adapter_model.safetensors")
    config = json.loads(config_file.read_text())
    trained_on = str(config.get("base_model_name_or_path") or "")
    if trained_on and Path(trained_on).name != base.name:
        raise ServeError(f"adapter {name!r} was trained for base model {trained_on!r}, not {str(base)!r}")
    base_config = json.loads((base / "config.json").read_text())
    hidden, layers = base_config.get("hidden_size"), base_config.get("num_hidden_layers")
    for key, shape in _safetensors_shapes(weights).items():
        if ".lora_A." in key and any(f".{m}." in key for m in _HIDDEN_INPUTS) and hidden and shape[-1] != hidden:
            raise ServeError(
                f"adapter {name!r} was trained for another base model: its weights expect hidden size "
                f"{shape[-1]}, {base.name} has {hidden}"
            )
        layer = _layer_index(key)
        if layers and layer is not None and layer >= layers:
            raise ServeError(
                f"adapter {name!r} was trained for another base model: it has layer {layer}, "
                f"{base.name} has {layers} layers"
            )
    if config.get("modules_to_save"):
        raise ServeError(f"adapter {name!r} saves whole modules {config['modules_to_save']}; vLLM serves LoRA only")
    return AdapterSpec(name, path.resolve(), int(config.get("r", 8)))


_HIDDEN_INPUTS = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")
"""Projections whose input is the hidden state: their lora_A is (r, hidden_size)."""


def _layer_index(key: str) -> int | None:
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        if part == "layers" and parts[i + 1].isdigit():
            return int(parts[i + 1])
    return None


def parse_adapter_arg(value: str) -> tuple[str, Path]:
    """`NAME=DIR` as given on the command line."""
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise ServeError(f"--adapter expects NAME=DIR, got {value!r}")
    return name, Path(path)


def max_lora_rank(adapters: Sequence[AdapterSpec]) -> int:
    wanted = max([DEFAULT_MAX_LORA_RANK, *(a.rank for a in adapters)])
    for rank in VLLM_RANKS:
        if rank >= wanted:
            return rank
    raise ServeError(f"adapter rank {wanted} is above vLLM's largest ({VLLM_RANKS[-1]})")
