"""Decide throughput and latency: a 10,000-grant / 1,000-rule policy against a 1-grant / 1-rule baseline.

Both policies are written as YAML to a temporary directory and loaded with the real
loader, then `decide()` runs over the same kind of call mix: mostly granted tools,
some ungranted (default deny), arguments that trip some CEL conditions. Prints
decisions/s (tight loop) and p50/p99 latency in microseconds (per-call timing), for a
warm memo and for the cold first call of each (identity, tool) pair, plus ratios.

    python bench/policy_decide.py [--calls 200000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from gateway.policy import Policy, decide, load_policy
from gateway.types import Identity, ToolCall

SERVERS, TOOLS_PER_SERVER = 40, 50
IDENTITIES, ROLES = 200, 50
DIRECT_GRANTS, ROLE_GRANTS = 40, 40  # 200*40 + 50*40 = 10,000 grants
RULES, CONDITIONAL_RULES, GLOB_RULES = 1000, 300, 100
CONDITIONS = [
    "args.n > 100",
    'has(args.path) && args.path.startsWith("/etc")',
    'identity.name == "agent-7" || args.n == 3',
    '"role-3" in identity.roles && args.n > 10',
]

Call = tuple[ToolCall, Identity]


def tool_name(server: int, tool: int) -> str:
    return f"srv{server}__tool{tool}"


def big_policy(rng: random.Random) -> dict[str, object]:
    all_tools = [tool_name(s, t) for s in range(SERVERS) for t in range(TOOLS_PER_SERVER)]
    roles = {}
    for r in range(ROLES):
        globs = [f"srv{r % SERVERS}__tool1*", f"srv{(r * 7) % SERVERS}__*"]
        grants = [*rng.sample(all_tools, ROLE_GRANTS - len(globs)), *globs]
        roles[f"role-{r}"] = {"grants": grants}
    roles["approver"] = {}
    identities = {
        f"agent-{i}": {
            "roles": rng.sample(sorted(roles.keys() - {"approver"}), 2),
            "grants": rng.sample(all_tools, DIRECT_GRANTS),
        }
        for i in range(IDENTITIES)
    }
    rules = []
    for k in range(RULES):
        effect = rng.choice(["deny", "approve", "allow"])
        if k < GLOB_RULES:
            tools = [f"srv{rng.randrange(SERVERS)}__tool{rng.randrange(10)}*"]
        else:
            tools = rng.sample(all_tools, 2)
        rule: dict[str, object] = {"id": f"rule-{k}", "effect": effect, "tools": tools, "reason": f"rule {k}"}
        if k % (RULES // CONDITIONAL_RULES) == 0:
            rule["when"] = CONDITIONS[k % len(CONDITIONS)]
        if effect == "approve":
            rule["approvers"] = ["approver"]
        rules.append(rule)
    return {"identities": identities, "roles": roles, "rules": rules}


def baseline_policy() -> dict[str, object]:
    return {
        "identities": {"agent-0": {"grants": [tool_name(0, 0)]}},
        "rules": [{"id": "rule-0", "effect": "deny", "tools": [tool_name(0, 0)], "when": CONDITIONS[0]}],
    }


def load(spec: dict[str, object]) -> tuple[Policy, float]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "policy.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
        started = time.perf_counter()
        policy = load_policy(Path(tmp))
        return policy, time.perf_counter() - started


def call_mix(policy: Policy, rng: random.Random, n: int, identities: list[str], tools: list[str]) -> list[Call]:
    """80% calls to a tool the identity holds a grant for, 20% to any tool; arguments vary.

    Identities are drawn with a heavy tail (a few busy agents, many quiet ones).
    """
    who = {name: Identity(name, policy.roles_of(name)) for name in identities}
    granted = {name: [t for t in tools if policy.is_granted(who[name], t)] for name in identities}
    calls = []
    for i in range(n):
        name = identities[min(int(rng.paretovariate(1.2)) - 1, len(identities) - 1)]
        identity = who[name]
        tool = rng.choice(granted[name]) if granted[name] and rng.random() < 0.8 else rng.choice(tools)
        server, _, upstream = tool.partition("__")
        args = {"n": rng.choice([1, 3, 50, 500]), "path": rng.choice(["/etc/passwd", "/home/x", "/tmp"])}
        calls.append((ToolCall(tool, server, upstream, args, call_id=str(i)), identity))
    return calls


def throughput(policy: Policy, calls: list[Call]) -> float:
    started = time.perf_counter()
    for call, identity in calls:
        decide(policy, call, identity)
    return len(calls) / (time.perf_counter() - started)


def latencies_us(policy: Policy, calls: list[Call]) -> list[float]:
    clock = time.perf_counter_ns
    out = []
    for call, identity in calls:
        t0 = clock()
        decide(policy, call, identity)
        out.append((clock() - t0) / 1000)
    return out


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] if len(values) > 1 else values[0]


def conditions_run(policy: Policy, call: ToolCall, identity: Identity) -> int:
    """How many CEL conditions decide() evaluates for this call (0: answered from the memo alone)."""
    if not policy.is_granted(identity, call.name):
        return 0
    roles = policy.effective_roles(identity)
    return sum(
        r.condition is not None and r.applies_statically(identity.name, roles, call.name) is None
        for r in policy.rules_for_tool(call.name)
    )


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"p50 {pct(values, 50):6.2f} us p99 {pct(values, 99):7.2f} us"


def measure(name: str, make: Callable[[], tuple[Policy, float]], rng: random.Random, n: int) -> dict[str, float]:
    policy, load_s = make()
    identities = sorted(policy.identities)
    tools = sorted({tool_name(s, t) for s in range(SERVERS) for t in range(TOOLS_PER_SERVER)})
    calls = call_mix(policy, rng, n, identities, tools)
    # Cold: first call of each distinct (identity, tool) pair on a freshly loaded policy (memo empty).
    fresh, _ = make()
    firsts = list({(i.name, c.name): (c, i) for c, i in reversed(calls)}.values())
    cold = latencies_us(fresh, firsts)
    throughput(policy, calls)  # warm the memo
    rate = statistics.median(throughput(policy, calls) for _ in range(3))
    warm = latencies_us(policy, calls)
    path = {(i.name, c.name): conditions_run(policy, c, i) for c, i in calls}
    with_cel = [us for (call, identity), us in zip(calls, warm, strict=True) if path[identity.name, call.name]]
    per_call = statistics.mean(path[i.name, c.name] for c, i in calls if path[i.name, c.name])
    memo_only = [us for (call, identity), us in zip(calls, warm, strict=True) if not path[identity.name, call.name]]
    effects = {e: 0 for e in ("allow", "deny", "approve")}
    for call, identity in calls:
        effects[decide(policy, call, identity).effect] += 1
    grants = sum(len(e.grant.tools.globs) for e in policy.identities.values())
    grants += sum(len(g.tools.globs) for g in policy.roles.values())
    print(
        f"{name}: {grants} grants, {len(policy.rules)} rules, loaded in {load_s * 1000:.1f} ms; "
        f"{len(calls)} calls {effects}"
    )
    print(f"  all calls     {rate:>10,.0f} decisions/s  {summary(warm)}")
    print(f"  memo only     {len(memo_only):>10,} calls        {summary(memo_only)}")
    print(f"  runs CEL      {len(with_cel):>10,} calls        {summary(with_cel)}  ({per_call:.2f} conditions/call)")
    print(f"  cold memo     {len(cold):>10,} pairs        {summary(cold)}")
    return {
        "rate": rate,
        "p50": pct(warm, 50),
        "p99": pct(warm, 99),
        "memo_p50": pct(memo_only, 50),
        "cel_p50": pct(with_cel, 50),
        "cold_p50": pct(cold, 50),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="Calls in the mix for each policy.")
    parser.add_argument("--seed", type=int, default=7, help="Seed for the policy and the call mix.")
    opts = parser.parse_args()
    big_spec = big_policy(random.Random(opts.seed))
    base = measure("baseline", lambda: load(baseline_policy()), random.Random(opts.seed), opts.calls)
    big = measure("large", lambda: load(big_spec), random.Random(opts.seed), opts.calls)
    print("ratio large/baseline (same path, same run):")
    for key, label in (("memo_p50", "memo-only p50"), ("cel_p50", "runs-CEL p50"), ("cold_p50", "cold p50")):
        print(f"  {label:<14} {big[key] / base[key]:.2f}x")
    print(
        f"  all-calls decisions/s {big['rate'] / base['rate']:.2f}x (mixes differ: the baseline runs CEL on most calls)"
    )


if __name__ == "__main__":
    main()
