"""A content-addressed disk cache: the same question asked twice is answered from disk.

Keys are SHA-256 of the canonical JSON of everything that determines the answer (the teacher model's
name, the messages, the response schema, temperature, seed, limits; or the server command, tool and
arguments of an execution). Values are JSON files written atomically, so an interrupted run leaves
no half entry and a rerun with the same seed reproduces its output without calling anyone.
Never evicts (delete the folder to start over).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def key(question: Any) -> str:
    return hashlib.sha256(json.dumps(question, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class DiskCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.hits = 0
        self.misses = 0

    def _path(self, k: str) -> Path:
        return self.root / k[:2] / f"{k}.json"

    def get(self, question: Any) -> Any | None:
        path = self._path(key(question))
        if not path.is_file():
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(path.read_text())["answer"]

    def put(self, question: Any, answer: Any) -> None:
        path = self._path(key(question))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            json.dump({"question": question, "answer": answer}, f, ensure_ascii=False)
        os.replace(tmp, path)
