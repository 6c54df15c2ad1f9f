import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from finetune import roundtrip, synth
from finetune.base_model import BaseModelError, check_base, fetch, is_complete


def test_fetch_is_idempotent_and_model_dir_is_complete(base_dir: Path) -> None:
    assert is_complete(base_dir)
    before = (base_dir / "model.safetensors").stat().st_mtime_ns
    assert fetch(base_dir) == base_dir
    assert (base_dir / "model.safetensors").stat().st_mtime_ns == before
    check_base(base_dir)


def test_base_dir_without_chat_template_is_named(base_dir: Path, tmp_path: Path) -> None:
    for f in ("config.json", "tokenizer.json"):
        shutil.copy2(base_dir / f, tmp_path / f)
    (tmp_path / "tokenizer_config.json").write_text('{"eos_token": "<|im_end|>"}')
    with pytest.raises(BaseModelError, match="no chat template"):
        check_base(tmp_path)
    with pytest.raises(BaseModelError, match=r"no config\.json"):
        check_base(tmp_path / "missing")


def _examples(real_catalogs: dict) -> list[synth.Example]:
    rng = random.Random(0)
    tools = synth.synthetic_catalog(rng) + real_catalogs["git"]
    return synth.synthesize(tools, 200, rng, parallel=0.2)


def test_roundtrip_passes_with_the_real_template(tokenizer: Any, real_catalogs: dict) -> None:
    assert roundtrip.check(tokenizer, _examples(real_catalogs)) == 200


def test_roundtrip_catches_a_broken_template(tokenizer: Any, real_catalogs: dict) -> None:
    good = tokenizer.chat_template
    try:  # a template that forgets to close the call tag: the parser reads the next call into the first
        tokenizer.chat_template = good.replace("'}\\n</tool_call>'", "'}\\n'")
        assert tokenizer.chat_template != good
        with pytest.raises(roundtrip.RoundTripError, match="template round trip failed"):
            roundtrip.check(tokenizer, _examples(real_catalogs))
        # a template that renders arguments as a Python dict
        tokenizer.chat_template = good.replace(
            "{{- tool_call['arguments'] }}", "{{- tool_call['arguments'] | replace('\"', \"'\") }}"
        )
        with pytest.raises(roundtrip.RoundTripError, match="parsed back"):
            roundtrip.check(tokenizer, _examples(real_catalogs))
    finally:
        tokenizer.chat_template = good
