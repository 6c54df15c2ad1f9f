"""Policy: who may call which tool, with which arguments, how often.

Public API used by the gateway and the CLI. Files: `model` (file format), `source`
(YAML with line numbers), `load` (files -> `Policy` or `PolicyError`), `compiled`
(the indexed `Policy`), `condition` (CEL glue), `engine` (pure `decide`/`explain`),
`ratelimit` (stateful limits), `store` (hot reload), `schema_check` (policy vs tool
catalog), `testing` (the `warden policy test` runner), `uri` (the normal form of resource URIs
and URI globs). Semantics: engine.py.
"""

from gateway.policy.compiled import Policy
from gateway.policy.engine import Explanation, RuleTrace, decide, explain
from gateway.policy.load import load_policy
from gateway.policy.problems import Location, PolicyError, Problem
from gateway.policy.ratelimit import RateLimiter, RateLimits, RateLimitStoreError
from gateway.policy.schema_check import check_against_catalog, lint_policy
from gateway.policy.store import PolicyStore
from gateway.policy.uri import normalise_uri

__all__ = [
    "Explanation",
    "Location",
    "Policy",
    "PolicyError",
    "PolicyStore",
    "Problem",
    "RateLimitStoreError",
    "RateLimiter",
    "RateLimits",
    "RuleTrace",
    "check_against_catalog",
    "decide",
    "explain",
    "lint_policy",
    "load_policy",
    "normalise_uri",
]
