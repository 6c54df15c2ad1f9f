"""The five real MCP servers the risk tests classify: two from PyPI (in the venv), three from npm.

The npm packages are installed once into ``.warden/npm-servers`` (git-ignored) with `npm install
--prefix`, pinned to the versions below; `upstreams_yaml` declares all five as stdio upstreams,
the way an operator's upstreams file would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

from tests.gateway.harness import REPO

NPM_PACKAGES = {
    "everything": "@modelcontextprotocol/server-everything@2026.8.31",
    "filesystem": "@modelcontextprotocol/server-filesystem@2026.8.31",
    "memory": "@modelcontextprotocol/server-memory@2026.8.31",
}
NPM_DIR = REPO / ".warden" / "npm-servers"
SNAPSHOT = Path(__file__).parent / "catalogs.json"
"""tools/list of the five servers, per server, as the gateway's upstream client received them."""


def npm_bin(name: str) -> Path:
    return NPM_DIR / "node_modules" / ".bin" / f"mcp-server-{name}"


def install_npm_servers() -> Path:
    """Install the pinned npm servers unless they are there; returns the folder. Test workers that ask at
    once wait for one install (a lock file beside the folder)."""
    NPM_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(NPM_DIR.parent / "npm-servers.lock"):
        if _installed():
            return NPM_DIR
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is not installed (node 20 + npm are needed for the npm MCP servers)")
        subprocess.run(
            [npm, "install", "--prefix", str(NPM_DIR), "--no-audit", "--no-fund", "--loglevel=error",
             *NPM_PACKAGES.values()],
            check=True,
            timeout=600,
        )  # fmt: skip
    return NPM_DIR


def _installed() -> bool:
    wanted = [f"{spec.rsplit('@', 1)[0]}/package.json" for spec in NPM_PACKAGES.values()]
    return all((NPM_DIR / "node_modules" / w).exists() for w in wanted) and _pinned()


def _pinned() -> bool:
    import json

    for spec in NPM_PACKAGES.values():
        package, version = spec.rsplit("@", 1)
        meta = json.loads((NPM_DIR / "node_modules" / package / "package.json").read_text())
        if meta.get("version") != version:
            return False
    return True


def upstreams_yaml(files_root: Path, memory_file: Path) -> str:
    """All five servers as stdio upstreams; the filesystem server may touch only `files_root`."""
    return f"""
servers:
  time:
    command: {sys.executable}
    args: ["-m", "mcp_server_time", "--local-timezone", "UTC"]
  git:
    command: {sys.executable}
    args: ["-m", "mcp_server_git"]
  everything:
    command: {npm_bin("everything")}
  filesystem:
    command: {npm_bin("filesystem")}
    args: ["{files_root}"]
  memory:
    command: {npm_bin("memory")}
    env:
      MEMORY_FILE_PATH: "{memory_file}"
"""
