"""A few real training steps on the real base model: the LoRA weights change and the loss falls."""

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from finetune import data, export, synth
from finetune.config import TrainConfig, load
from finetune.train import train
from warden import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainConfig, dict]:
    tmp = tmp_path_factory.mktemp("ft")
    rng = random.Random(0)
    tools = synth.synthetic_catalog(rng, ["weather", "ticket"])
    examples = [synth.example_call(t, tools[:1] if t is not tools[0] else tools[1:2], rng) for t in tools[:4]]
    data.write_jsonl(tmp / "train.jsonl", examples)
    data.write_jsonl(tmp / "eval.jsonl", examples[:2])
    cfg = TrainConfig(
        base=str(base_dir),
        train_file=str(tmp / "train.jsonl"),
        eval_file=str(tmp / "eval.jsonl"),
        run_dir=str(tmp / "run"),
        max_len=384,
        batch_size=4,
        max_steps=4,
        lr=2e-3,
        warmup_steps=0,
        lr_schedule="constant",
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        eval_every=2,
        save_every=2,
    )
    return cfg, train(cfg)


def test_training_changes_lora_weights_and_lowers_loss(run: tuple[TrainConfig, dict]) -> None:
    cfg, metrics = run
    history = json.loads((Path(cfg.run_dir) / "metrics.json").read_text())["history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) == 4 and losses[-1] < losses[0]  # the same batch every step: comparable losses
    weights = load_file(Path(cfg.run_dir) / "adapter" / "adapter_model.safetensors")
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and all(torch.count_nonzero(v) > 0 for v in lora_b)  # B starts at zero
    for f in ("config.json", "metrics.json", "loss.png", "train.log", "checkpoint/state.json"):
        assert (Path(cfg.run_dir) / f).is_file(), f
    assert metrics["tokens_per_s"] > 0


def test_resume_continues_from_the_checkpoint(run: tuple[TrainConfig, dict]) -> None:
    cfg, _ = run
    cfg2 = load(None, {**cfg.to_dict(), "max_steps": 5})
    metrics = train(cfg2, resume=True)
    assert metrics["steps"] == 5
    history = json.loads((Path(cfg.run_dir) / "metrics.json").read_text())["history"]
    assert [h["step"] for h in history if "loss" in h] == [1, 2, 3, 4, 5]


def test_export_adapter_with_model_card_and_merged_model(run: tuple[TrainConfig, dict], tmp_path: Path) -> None:
    cfg, _ = run
    out = export.export_adapter(Path(cfg.run_dir), tmp_path / "adapter")
    assert {p.name for p in out.iterdir()} == {"adapter_model.safetensors", "adapter_config.json", "README.md"}
    assert cfg.base in (out / "README.md").read_text()
    merged = export.export_merged(Path(cfg.base), Path(cfg.run_dir) / "adapter", tmp_path / "merged")
    assert (merged / "model.safetensors").is_file() and (merged / "chat_template.jinja").is_file()
    assert not list(tmp_path.glob(".*"))  # no temp directories left behind


def test_eval_command_writes_base_vs_adapter_results(run: tuple[TrainConfig, dict]) -> None:
    """`warden finetune eval` end to end on a trained run: JSON, markdown table and bar chart."""
    cfg, _ = run
    run_dir = Path(cfg.run_dir)
    args = ["--run-dir", str(run_dir), "--engine", "transformers", "--limit", "2", "--max-new-tokens", "24"]
    args += ["--bfcl-limit", "1", "--bfcl-categories", "simple_python,irrelevance"]
    done = CliRunner().invoke(cli.app, ["finetune", "eval", *args])
    assert done.exit_code == 0, done.output
    results = json.loads((run_dir / "eval.json").read_text())
    assert results["generated_by"] == "transformers" and results["n_heldout"] == 2
    for side in ("base", "adapter"):
        assert results["heldout"][side]["n_call"] == 2 and len(results["heldout"][side]["rows"]) == 2
        assert set(results["bfcl"][side]) == {"simple_python", "irrelevance"}
    assert "| held-out tool call accuracy |" in (run_dir / "eval.md").read_text()
    assert (run_dir / "eval.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_command_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    done = CliRunner().invoke(cli.app, ["finetune", "eval", "--run-dir", str(tmp_path), "--engine", "transformers"])
    assert done.exit_code == 1 and "is not a finished training run" in done.output
