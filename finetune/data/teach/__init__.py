"""The teacher path: a larger model served by vLLM writes requests and calls; checks decide what stays.

For candidate i of a run with seed s, a tool is drawn (Random(f"{s}/{i}")) from the catalogs, then:
1. the teacher proposes a request and the call it implies (finetune.data.teach.teacher);
2. the proposal must parse, validate against the tool's schema, not name a parameter, not repeat a
   default (finetune.data.teach.verify) and not be a benchmark or eval question (finetune.data.leakage);
3. where it is safe (a read-only tool of a server the operator set up), the call runs against the real
   MCP server and must not fail (finetune.data.teach.execute);
4. a second teacher pass must confirm that the request implies exactly that call;
5. after a real result, the teacher writes a short grounded answer (kept when it passes its checks).
Every stage's verdict is recorded on the candidate; only candidates that pass every stage become
examples. Teacher answers and execution results are cached on disk, so a rerun with the same seed
gives the same output without calling the teacher or the servers. BFCL and eval questions are only
ever matched against, never offered to the teacher.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from finetune.data import leakage
from finetune.data.teach import verify
from finetune.data.teach.execute import Executor
from finetune.data.teach.teacher import Mode, Teacher
from finetune.synth import Example, Tool

Progress = Callable[[int, int, int], None]
"""Called after each candidate with (done, total, accepted so far)."""


@dataclass
class Candidate:
    index: int
    server: str
    tool: str
    request: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    verdicts: dict[str, list[str]] = field(default_factory=dict)
    """Stage -> problems found (an empty list: the stage passed). Stages not reached are absent."""
    result: str | None = None
    answer: str | None = None

    @property
    def accepted(self) -> bool:
        required = ("parse", "schema", "names", "defaults", "leak", "execute", "confirm")
        return all(stage in self.verdicts and not self.verdicts[stage] for stage in required)

    def record(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "server": self.server,
            "tool": self.tool,
            "request": self.request,
            "arguments": self.arguments,
            "verdicts": self.verdicts,
            "result": self.result,
            "answer": self.answer,
            "accepted": self.accepted,
        }


def _seed(seed: int, index: int, stage: int) -> int:
    return (seed * 1_000_003 + index * 10 + stage) % 2**31


def _check(c: Candidate, tool: Tool, text: str, guard: leakage.Guard | None) -> bool:
    """The pure checks, recorded on `c`; True when all passed."""
    parsed = verify.parse_proposal(text)
    if isinstance(parsed, str):
        c.verdicts["parse"] = [parsed]
        return False
    c.verdicts["parse"] = []
    c.request, c.arguments = parsed
    schema = tool["function"]["parameters"]
    c.verdicts["schema"] = verify.schema_problems(schema, c.arguments)
    named = [f"names parameter {n!r}" for n in verify.named_parameters(c.arguments, c.request)]
    c.verdicts["names"] = verify.request_problems(c.request, c.tool) + named
    c.verdicts["defaults"] = [f"repeats the default of {n!r}" for n in verify.repeated_defaults(schema, c.arguments)]
    c.verdicts["leak"] = ["the request is a benchmark or eval question"] if guard and guard.hit(c.request) else []
    return not (c.verdicts["schema"] or c.verdicts["names"] or c.verdicts["defaults"] or c.verdicts["leak"])


def _execute(c: Candidate, executor: Executor | None) -> bool:
    if executor is None:
        c.verdicts["execute"] = []  # nothing set up to run: the schema and the confirmation decide
        return True
    outcome = executor.run(c.server, c.tool, c.arguments)
    c.verdicts["execute"] = [f"the server answered an error: {outcome.text[:200]}"] if outcome.is_error else []
    c.result = outcome.text if outcome.executed and not outcome.is_error else None
    return not outcome.is_error


def candidate(
    index: int,
    seed: int,
    catalogs: dict[str, list[Tool]],
    teacher: Teacher,
    *,
    executor: Executor | None,
    mode: Mode,
    guard: leakage.Guard | None = None,
) -> Candidate:
    """One candidate through every stage it reaches."""
    rng = random.Random(f"{seed}/{index}")
    server = rng.choice(sorted(catalogs))
    tool = rng.choice(catalogs[server])
    c = Candidate(index, server, tool["function"]["name"])
    if not _check(c, tool, teacher.propose(tool, mode, _seed(seed, index, 0)), guard) or not _execute(c, executor):
        return c
    verdict = verify.parse_confirmation(
        teacher.confirm(tool, c.request, {"name": c.tool, "arguments": c.arguments}, _seed(seed, index, 1))
    )
    if isinstance(verdict, str):
        c.verdicts["confirm"] = [verdict]
    else:
        c.verdicts["confirm"] = [] if verdict else ["the teacher does not confirm that the request implies the call"]
    if c.accepted and c.result is not None:
        answer = teacher.answer(c.request, c.tool, c.result, _seed(seed, index, 2)).strip()
        c.verdicts["answer"] = verify.answer_problems(answer, c.result)
        c.answer = answer if not c.verdicts["answer"] else None
    return c


def teach(
    catalogs: dict[str, list[Tool]],
    n: int,
    seed: int,
    teacher: Teacher,
    *,
    executor: Executor | None = None,
    mode: Mode = "strict",
    progress: Progress | None = None,
    guard: leakage.Guard | None = None,
) -> list[Candidate]:
    """`n` candidates, every verdict recorded. `guard`: benchmark and eval questions (finetune.data.leakage)
    a request must not be."""
    out: list[Candidate] = []
    for i in range(n):
        out.append(candidate(i, seed, catalogs, teacher, executor=executor, mode=mode, guard=guard))
        if progress is not None:
            progress(i + 1, n, sum(c.accepted for c in out))
    return out


def examples(candidates: list[Candidate], catalogs: dict[str, list[Tool]]) -> list[Example]:
    """The accepted candidates as training examples: the server's catalog offered, the call, and after a
    real result with a good answer, the result and the answer."""
    import json

    out = []
    for c in candidates:
        if not c.accepted:
            continue
        fn = {"name": c.tool, "arguments": json.dumps(c.arguments, ensure_ascii=False)}
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": c.request},
            {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": fn}]},
        ]
        if c.result is not None and c.answer:
            messages += [{"role": "tool", "content": c.result}, {"role": "assistant", "content": c.answer}]
        out.append({"messages": messages, "tools": catalogs[c.server]})
    return out
