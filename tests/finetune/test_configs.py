"""Every shipped training config loads, and points at a base `warden model fetch` prepares."""

from pathlib import Path

import pytest

from finetune import base_model
from finetune.config import load

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "finetune" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_and_its_base_is_fetchable(path: Path) -> None:
    cfg = load(path)
    assert cfg.precision == "auto"
    fetchable = {spec.default_dir for spec in base_model.MODELS.values()}
    assert Path(cfg.base).expanduser() in fetchable
    assert path.stem in {spec.name for spec in base_model.MODELS.values()}


def test_the_05b_base_has_a_config() -> None:
    assert "qwen2.5-coder-0.5b" in {p.stem for p in CONFIGS}
