"""gateway/config.py: where Warden finds the key of its vLLM."""

from __future__ import annotations

from pathlib import Path

from gateway.config import Settings
from serving.keys import write_key_file


def test_the_vllm_key_comes_from_the_setting_then_the_launch_file(tmp_path: Path) -> None:
    key_file = tmp_path / "vllm.key"
    assert Settings(vllm_api_key_file=key_file).vllm_key() is None
    write_key_file(key_file, "wvk_launch")
    assert Settings(vllm_api_key_file=key_file).vllm_key() == "wvk_launch"
    assert Settings(vllm_api_key_file=key_file, vllm_api_key="wvk_set").vllm_key() == "wvk_set"
    assert "wvk_set" not in str(Settings(vllm_api_key="wvk_set").describe())
