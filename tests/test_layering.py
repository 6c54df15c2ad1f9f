"""The architecture the tree promises, checked on the source: import directions and one home per concern.

Top-level packages form layers; a package imports only the layers below it (every import counts, including
ones inside functions and under TYPE_CHECKING: a lazy import is still a dependency):

    serving   the vLLM process; imports none of ours
    gateway   may import serving; never agent, finetune or warden (the registry lives in the gateway)
    agent     may import serving, and from the gateway only its settings (gateway.config)
    finetune  may import serving, gateway (audit query, redaction, adapter registry) and agent (its MCP client)
    warden    the CLI and the demo: a client of all of them

CONTRIBUTING.md shows the same table; change both together.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("serving", "gateway", "agent", "finetune", "warden")
# Where a lower layer is allowed to reach only part of a package below it: (importer, package) -> modules.
NARROW = {("agent", "gateway"): ("gateway.config",)}


def imports(root: Path, package: str) -> dict[str, set[str]]:
    """Every absolute module each file of `package` imports, keyed by the file's path under `root`."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted((root / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found[str(path.relative_to(root))].update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found[str(path.relative_to(root))].add(node.module)
    return found


def layering_violations(root: Path) -> list[str]:
    """`file: module` for each import that goes up a layer, sideways into a narrowed package, or into itself."""
    problems = []
    for rank, package in enumerate(LAYERS):
        below = set(LAYERS[:rank])
        for file, modules in imports(root, package).items():
            for module in sorted(modules):
                top = module.split(".")[0]
                if top == package or top not in LAYERS:
                    continue
                allowed = NARROW.get((package, top))
                if top not in below:
                    problems.append(f"{file}: {module} ({package} must not import {top})")
                elif allowed is not None and not module.startswith(allowed):
                    problems.append(f"{file}: {module} ({package} may import only {', '.join(allowed)} of {top})")
    return problems


def spread_concerns(root: Path) -> list[str]:
    """Sibling modules named `x_*.py` beside `x.py`, `x/` or another `x_*.py`: a concern that wants a package."""
    problems = []
    for package in LAYERS:
        for folder in [root / package, *(p for p in (root / package).rglob("*") if p.is_dir())]:
            if folder.name in ("__pycache__", "migrations", "versions"):
                continue
            names = {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if p.is_dir()}
            by_prefix: dict[str, list[str]] = defaultdict(list)
            for name in names:
                if "_" in name.strip("_"):
                    by_prefix[name.split("_")[0]].append(name)
            for prefix, group in sorted(by_prefix.items()):
                if len(group) > 1 or prefix in names:
                    members = sorted({*group, *([prefix] if prefix in names else [])})
                    problems.append(f"{folder.relative_to(root)}: {', '.join(members)} (make {prefix}/ a package)")
    return problems


def test_no_package_imports_a_layer_above_it() -> None:
    assert layering_violations(REPO) == []


def test_no_concern_is_spread_over_sibling_prefixed_modules() -> None:
    assert spread_concerns(REPO) == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    for package in LAYERS:
        (root / package).mkdir(exist_ok=True)
    return root


def test_the_checks_catch_an_upward_import_a_narrowed_one_and_spread_files(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "gateway/routes/admin.py": "def promote():\n    from finetune.registry import promote\n",
            "serving/process.py": "import gateway.config\n",
            "agent/loop.py": "from gateway.audit.writer import AuditWriter\nfrom gateway.config import Settings\n",
            "gateway/audit.py": "",
            "gateway/audit_chain.py": "",
            "gateway/approval_desk.py": "",
            "gateway/approval_store.py": "",
            "finetune/base_model.py": "from gateway.audit.query import query\nimport agent.tools\n",
        },
    )
    assert sorted(layering_violations(root)) == [
        "agent/loop.py: gateway.audit.writer (agent may import only gateway.config of gateway)",
        "gateway/routes/admin.py: finetune.registry (gateway must not import finetune)",
        "serving/process.py: gateway.config (serving must not import gateway)",
    ]
    assert spread_concerns(root) == [
        "gateway: approval_desk, approval_store (make approval/ a package)",
        "gateway: audit, audit_chain (make audit/ a package)",
    ]
