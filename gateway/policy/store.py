"""The live policy of a running gateway, and its hot reload.

Owns `PolicyStore`: it loads the policy directory once at construction (a bad
directory is fatal then), and afterwards swaps in a new `Policy` only when the whole
directory loads cleanly. A bad edit is logged with file:line and the last good policy
stays in force; the gateway never runs on a half-valid policy. `on_reload(ok)` is
called after every reload attempt (for metrics); read `current` for the policy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import watchfiles

from gateway.policy.compiled import Policy
from gateway.policy.load import PATTERNS, load_policy
from gateway.policy.problems import PolicyError

log = logging.getLogger(__name__)


class PolicyStore:
    def __init__(self, directory: Path, on_reload: Callable[[bool], None] | None = None) -> None:
        self.directory = Path(directory)
        self._on_reload = on_reload
        self._current = load_policy(self.directory)

    @property
    def current(self) -> Policy:
        return self._current

    def reload(self) -> bool:
        """Load the directory again; True when the new policy was applied."""
        try:
            policy = load_policy(self.directory)
        except PolicyError as exc:
            log.error("policy reload failed, keeping the last good policy:\n%s", exc)
            ok = False
        else:
            self._current = policy
            log.info("policy reloaded from %s (%d rules)", self.directory, len(policy.rules))
            ok = True
        if self._on_reload is not None:
            self._on_reload(ok)
        return ok

    async def watch(self) -> None:
        """Reload whenever a policy file in the directory changes; runs until cancelled."""
        async for _changes in watchfiles.awatch(self.directory, watch_filter=self._is_policy_file, recursive=False):
            self.reload()

    def _is_policy_file(self, _change: watchfiles.Change, path: str) -> bool:
        return any(Path(path).match(pattern) for pattern in PATTERNS)
