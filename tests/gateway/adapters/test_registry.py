"""gateway/adapters/registry.py: adapters in the database, their scores from eval reports, the promotion rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gateway.adapters.registry import AdapterRegistry, EvalScores, RegistryError, promotion_problem, read_eval
from gateway.db import create_db_engine, migrate

HIDDEN = 64


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def make_base(root: Path, name: str = "SmolLM2-135M-Instruct") -> Path:
    base = root / name
    base.mkdir(parents=True)
    (base / "config.json").write_text(json.dumps({"hidden_size": HIDDEN, "num_hidden_layers": 2}))
    (base / "chat_template.jinja").write_text("{{ '<tool_call>' }}")
    return base


def make_adapter(root: Path, trained_on: Path, hidden: int = HIDDEN) -> Path:
    """A LoRA adapter directory in PEFT's layout (config + safetensors weights)."""
    import torch
    from safetensors.torch import save_file

    root.mkdir(parents=True)
    (root / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(trained_on), "r": 8}))
    key = "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"
    save_file({key: torch.zeros(8, hidden)}, str(root / "adapter_model.safetensors"))
    return root


def eval_report(path: Path, base: float, adapter: float) -> Path:
    """The shape `warden finetune eval` writes (eval.json)."""
    path.write_text(
        json.dumps(
            {
                "heldout": {
                    "base": {"tool_call_accuracy": base, "irrelevance_accuracy": 0.5, "rows": [{"x": 1}]},
                    "adapter": {"tool_call_accuracy": adapter, "irrelevance_accuracy": 0.75, "rows": [{"x": 1}]},
                },
                "bfcl": {
                    "base": {"simple_python": {"accuracy": 0.25}},
                    "adapter": {"simple_python": {"accuracy": 0.5}},
                },
                "n_heldout": 4,
            }
        )
    )
    return path


def test_register_records_path_base_and_scores(engine: Engine, tmp_path: Path) -> None:
    base = make_base(tmp_path)
    adapter = make_adapter(tmp_path / "a", base)
    scores = read_eval(eval_report(tmp_path / "eval.json", base=0.25, adapter=0.9))
    row = AdapterRegistry(engine).register("tool-v1", base, adapter, scores)
    assert (row.name, row.base_model, row.path) == ("tool-v1", str(base.resolve()), str(adapter.resolve()))
    assert (row.metric, row.score, row.base_score) == ("tool_call_accuracy", 0.9, 0.25)
    assert row.created_at.tzinfo is not None and row.promoted_at is None
    stored = AdapterRegistry(engine).get("tool-v1")
    assert stored is not None and "rows" not in stored.eval_report
    assert [a.name for a in AdapterRegistry(engine).list()] == ["tool-v1"]


def test_a_name_is_registered_once_unless_replaced(engine: Engine, tmp_path: Path) -> None:
    base = make_base(tmp_path)
    adapter = make_adapter(tmp_path / "a", base)
    registry = AdapterRegistry(engine)
    registry.register("tool-v1", base, adapter, None)
    with pytest.raises(RegistryError, match="already registered; pass --replace"):
        registry.register("tool-v1", base, adapter, None)
    scores = EvalScores("tool_call_accuracy", 0.5, 0.25, {})
    assert registry.register("tool-v1", base, adapter, scores, replace=True).score == 0.5


def test_an_adapter_for_another_base_cannot_be_registered(engine: Engine, tmp_path: Path) -> None:
    base = make_base(tmp_path)
    other = make_adapter(tmp_path / "a", tmp_path / "Qwen2.5-0.5B-Instruct")
    with pytest.raises(RegistryError, match=r"trained for base model '.*Qwen2.5-0.5B-Instruct'"):
        AdapterRegistry(engine).register("x", base, other, None)
    wrong_shape = make_adapter(tmp_path / "b", base, hidden=HIDDEN * 2)
    with pytest.raises(RegistryError, match="expect hidden size 128"):
        AdapterRegistry(engine).register("y", base, wrong_shape, None)


def test_missing_paths_are_named(engine: Engine, tmp_path: Path) -> None:
    base = make_base(tmp_path)
    with pytest.raises(RegistryError, match="is not a LoRA adapter directory"):
        AdapterRegistry(engine).register("x", base, tmp_path / "nope", None)
    with pytest.raises(RegistryError, match=r"base model directory .* does not exist"):
        AdapterRegistry(engine).register("x", tmp_path / "no-base", tmp_path / "nope", None)


def test_eval_reports_give_any_metric_and_name_what_is_missing(tmp_path: Path) -> None:
    report = eval_report(tmp_path / "eval.json", base=0.25, adapter=0.9)
    assert read_eval(report, "bfcl:simple_python").adapter == 0.5
    assert read_eval(report, "irrelevance_accuracy").base == 0.5
    with pytest.raises(RegistryError, match=r"no bfcl:multiple for adapter and base"):
        read_eval(report, "bfcl:multiple")
    only_adapter = tmp_path / "adapter-only.json"
    only_adapter.write_text(json.dumps({"heldout": {"adapter": {"tool_call_accuracy": 0.9}}}))
    with pytest.raises(RegistryError, match=r"no tool_call_accuracy for base.*evaluate base and adapter side by side"):
        read_eval(only_adapter)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RegistryError, match="cannot be read"):
        read_eval(tmp_path / "bad.json")


def test_the_promotion_rule(engine: Engine, tmp_path: Path) -> None:
    base = make_base(tmp_path)
    adapter = make_adapter(tmp_path / "a", base)
    registry = AdapterRegistry(engine)
    weak = registry.register("weak", base, adapter, EvalScores("tool_call_accuracy", 0.2, 0.5, {}))
    even = registry.register("even", base, adapter, EvalScores("tool_call_accuracy", 0.5, 0.5, {}))
    unscored = registry.register("unscored", base, adapter, None)
    assert promotion_problem(weak, str(base)) == (
        "adapter 'weak' scores 0.200 tool_call_accuracy, below its base model's 0.500; it is not promoted"
    )
    assert promotion_problem(even, str(base)) is None
    assert "has no eval scores" in str(promotion_problem(unscored, None))
    assert "but the server runs /models/Other" in str(promotion_problem(even, "/models/Other"))


def test_promoted_adapters_are_remembered_per_base(engine: Engine, tmp_path: Path) -> None:
    base = make_base(tmp_path)
    registry = AdapterRegistry(engine)
    registry.register("a", base, make_adapter(tmp_path / "a", base), None)
    registry.register("b", base, make_adapter(tmp_path / "b", base), None)
    promoted = registry.mark_promoted("b", "root-admin")
    assert promoted.promoted_by == "root-admin" and promoted.promoted_at is not None
    assert [a.name for a in registry.promoted(base)] == ["b"]
    assert registry.promoted(tmp_path / "elsewhere") == []
    with pytest.raises(RegistryError, match="no adapter named 'c'"):
        registry.mark_promoted("c", "root-admin")


def test_cli_register_and_list(tmp_path: Path) -> None:
    base = make_base(tmp_path)
    adapter = make_adapter(tmp_path / "a", base)
    report = eval_report(tmp_path / "eval.json", base=0.25, adapter=0.9)
    env = {**os.environ, "WARDEN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "COLUMNS": "200"}

    def warden(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "warden", *args], env=env, capture_output=True, text=True)

    done = warden("adapters", "register", "tool-v1", "--path", str(adapter), "--base", str(base), "--eval", str(report))
    assert done.returncode == 0, done.stderr
    assert "registered tool-v1 (tool_call_accuracy 0.900, base 0.250)" in done.stdout
    listing = warden("adapters", "list")
    assert "tool-v1" in listing.stdout and "0.900" in listing.stdout and "0.250" in listing.stdout
    refused = warden("adapters", "register", "x", "--path", str(tmp_path / "missing"), "--base", str(base))
    assert refused.returncode == 1 and "is not a LoRA adapter directory" in refused.stderr
