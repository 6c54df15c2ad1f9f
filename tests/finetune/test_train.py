"""A few real training steps on the real base model: the LoRA weights change and the loss falls; the
precision follows the (injected) machine; a time budget bounds the whole run, eval loss included."""

import json
import random
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from finetune import data, export, synth
from finetune.config import TrainConfig, load
from finetune.precision import Capability, PrecisionError, choose, probe
from finetune.train import TrainingError, train
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
        # 4 steps of ~1,200 tokens: ~40 s in fp32 on an AVX2-only CPU (~10 s/step measured there); 118 s/step
        # measured with 2 threads on a 2-core machine at load ~12, 3-5x less with 1 thread (no OpenMP spinning)
        max_minutes=10,
        threads=1,
    )
    return cfg, train(cfg)


def test_training_changes_lora_weights_and_lowers_loss(run: tuple[TrainConfig, dict]) -> None:
    cfg, metrics = run
    history = json.loads((Path(cfg.run_dir) / "metrics.json").read_text())["history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) == 4, metrics["stop_reason"]
    assert losses[-1] < losses[0]  # the same batch every step: comparable losses
    weights = load_file(Path(cfg.run_dir) / "adapter" / "adapter_model.safetensors")
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and all(torch.count_nonzero(v) > 0 for v in lora_b)  # B starts at zero
    for f in ("config.json", "metrics.json", "loss.png", "train.log", "checkpoint/state.json"):
        assert (Path(cfg.run_dir) / f).is_file(), f
    assert metrics["tokens_per_s"] > 0
    machine = probe()
    chosen = json.loads((Path(cfg.run_dir) / "config.json").read_text())["chosen"]
    assert chosen["precision"] == metrics["precision"] == choose("auto", machine).value
    assert chosen["machine"]["model"] == machine.model and metrics["precision_reason"] == chosen["precision_reason"]
    assert metrics["stop_reason"] == "max_steps 4 reached"


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


NO_BF16 = Capability("cpu", "AVX2-only CPU (injected)", ("avx2",), False, "injected by the test")


def test_bf16_on_a_cpu_without_it_is_refused_before_any_work(run: tuple[TrainConfig, dict], tmp_path: Path) -> None:
    cfg, _ = run
    explicit = load(None, {**cfg.to_dict(), "precision": "bf16", "run_dir": str(tmp_path / "refused")})
    with pytest.raises(PrecisionError, match="force_precision"):
        train(explicit, capability=NO_BF16)
    assert not (tmp_path / "refused").exists()


def test_time_budget_bounds_the_run_and_its_eval_loss(base_dir: Path, tmp_path: Path) -> None:
    """A 90 s budget for a run of 1,000 steps on a machine without bf16 (injected): fp32 is chosen, the
    loop stops before a step that would not fit, the final eval loss covers only the batches that fit,
    and the whole call, model loading included, ends inside the budget."""
    train_ex, _ = data.build([], 0, 200, [], seed=0, eval_fraction=0.0, by_tool=False)
    data.write_jsonl(tmp_path / "train.jsonl", train_ex[:40])
    data.write_jsonl(tmp_path / "eval.jsonl", train_ex[40:])  # ~40 eval batches: far more than fit
    cfg = TrainConfig(
        base=str(base_dir),
        train_file=str(tmp_path / "train.jsonl"),
        eval_file=str(tmp_path / "eval.jsonl"),
        run_dir=str(tmp_path / "run"),
        max_len=384,
        batch_size=4,
        max_steps=1000,
        max_minutes=1.5,
        eval_every=0,
        save_every=0,
        eval_max_examples=160,
        lora_r=8,
        threads=1,  # measured on a 2-core machine that others load: 1 thread 3-5x faster than 2 (no spinning)
    )
    started = time.monotonic()
    metrics = train(cfg, capability=NO_BF16, started=started)
    wall = time.monotonic() - started
    assert wall <= 90, metrics
    assert metrics["precision"] == "fp32" and "no native bf16" in metrics["precision_reason"]
    assert 1 <= metrics["steps"] < 1000
    assert metrics["stop_reason"].startswith("max_minutes 1.5: the next step needs")
    assert metrics["eval_batches"] < metrics["eval_batches_total"] and metrics["eval_cut"]
    log = (Path(cfg.run_dir) / "train.log").read_text()
    assert f"stopping before step {metrics['steps'] + 1}" in log and "eval loss over" in log
    assert "precision fp32: auto: cpu AVX2-only CPU (injected) has no native bf16" in log


def test_a_budget_no_step_fits_in_fails_and_saves_no_adapter(base_dir: Path, tmp_path: Path) -> None:
    """A budget spent before the first step (here: 3 s of which setup takes most) is an error naming the
    budget, never an untrained adapter that would pass for a trained one (a test harness once cached one)."""
    train_ex, _ = data.build([], 0, 40, [], seed=0, eval_fraction=0.0, by_tool=False)
    data.write_jsonl(tmp_path / "train.jsonl", train_ex[:36])
    data.write_jsonl(tmp_path / "eval.jsonl", train_ex[36:])
    cfg = TrainConfig(
        base=str(base_dir),
        train_file=str(tmp_path / "train.jsonl"),
        eval_file=str(tmp_path / "eval.jsonl"),
        run_dir=str(tmp_path / "run"),
        max_len=384,
        batch_size=4,
        max_steps=10,
        max_minutes=0.05,
        eval_every=0,
        save_every=0,
        threads=1,
    )
    with pytest.raises(TrainingError, match=r"no training step fits the time budget .*max_minutes 0\.05"):
        train(cfg, capability=NO_BF16)
    assert not (Path(cfg.run_dir) / "adapter").exists()
