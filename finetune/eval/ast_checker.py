"""BFCL's own AST checker, loaded from the `bfcl-eval` wheel without installing the package.

Owns extracting `bfcl_eval/eval_checker/ast_eval/` and the two constants modules it needs from
the pinned wheel into a cache, and calling `ast_checker` on parsed calls. BFCL's
`constants/model_config.py` (a registry that imports every vendor SDK's handler) is replaced by a
stand-in that answers the one thing the checker asks of it, `underscore_to_dot`, with False:
callers pass BFCL's original (dotted) function names, mapped back from the names we served.
Never: modifies BFCL's checker code, or installs `bfcl-eval`.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

from finetune.bfcl import CACHE, download_wheel

CHECKER_CACHE = CACHE / "checker"
_MEMBERS = (
    "bfcl_eval/__init__.py",
    "bfcl_eval/constants/__init__.py",
    "bfcl_eval/constants/enums.py",
    "bfcl_eval/constants/type_mappings.py",
    "bfcl_eval/eval_checker/__init__.py",
    "bfcl_eval/eval_checker/ast_eval/",
)
_STAND_IN = '''"""Warden's stand-in for BFCL's model registry: the AST checker only reads `underscore_to_dot`."""
from collections import defaultdict
from types import SimpleNamespace

MODEL_CONFIG_MAPPING = defaultdict(lambda: SimpleNamespace(underscore_to_dot=False))
'''


def _extract(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        with zipfile.ZipFile(download_wheel(Path(tmp))) as zf:
            names = [n for n in zf.namelist() if any(n == m or (m.endswith("/") and n.startswith(m)) for m in _MEMBERS)]
            zf.extractall(tmp, names)
        (Path(tmp) / "bfcl_eval" / "constants" / "model_config.py").write_text(_STAND_IN)
        Path(tmp, "bfcl_eval").rename(dest / "bfcl_eval")


def load(cache: Path = CHECKER_CACHE) -> ModuleType:
    """`bfcl_eval.eval_checker.ast_eval.ast_checker` as shipped in the pinned wheel."""
    if not (cache / "bfcl_eval" / "eval_checker" / "ast_eval" / "ast_checker.py").is_file():
        _extract(cache)
    root = str(cache)
    if root not in sys.path:
        sys.path.insert(0, root)
    module = importlib.import_module("bfcl_eval.eval_checker.ast_eval.ast_checker")
    if not str(module.__file__).startswith(root):
        raise RuntimeError(f"bfcl_eval was imported from {module.__file__}, not the pinned copy in {root}")
    return module


def check(
    functions: list[dict[str, Any]], calls: list[dict[str, Any]], answer: list[dict[str, Any]], category: str
) -> dict[str, Any]:
    """BFCL's verdict (`valid`, `error`, `error_type`) on `calls` ([{original name: arguments}])."""
    module = load()
    enums = importlib.import_module("bfcl_eval.constants.enums")
    try:
        return dict(module.ast_checker(functions, calls, answer, enums.Language.PYTHON, category, "warden"))
    except Exception as exc:  # BFCL's checker raises on shapes it does not expect (e.g. a list for a dict)
        return {"valid": False, "error": [repr(exc)], "error_type": "checker_exception"}
