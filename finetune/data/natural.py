"""Natural requests over the catalogs of real MCP servers: the training data that teaches meaning.

Owns composing examples from the frames (finetune.data.frames) and the real `tools/list` snapshots
(`mcp_catalogs.json`: mcp-server-time, mcp-server-git, server-filesystem, server-memory,
server-everything, as the gateway's upstream client received them; plus the hand-made `tracker`
schemas with `$defs`). Each example offers tools the way an agent behind the gateway sees them (a
server's whole catalog, or a part of it with its near-misses, sometimes beside another server's,
names bare or with the gateway's `server__` prefix) and is one of:
- `call`: a request whose values live in its context; the one call it implies;
- `which`: the same, offered mostly near-misses (similar names, the same verb on another server);
- `parallel`: two requests in one message (the second after "Also,"), two calls;
- `none`: a request for a server that is not offered while same-verb tools of others are: text;
- `cannot`: a request the offered server's tools come close to but cannot do (delete a branch with
  the git tools, multiply with a sum tool): text;
- `chat`: small talk with tools offered: a plain answer;
- `result` / `denied` / `pending` / `unknown`: the call, then the tool's result, the gateway's
  denial, its pending approval or its unknown-tool answer (finetune.data.turns), then a short answer.
Deterministic for a seed. Never reads BFCL or any eval set, never runs a server (the teacher path,
finetune.data.teacher, executes calls).
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune import synth
from finetune.catalog import to_openai
from finetune.data import leakage, turns
from finetune.data.frames import Frame, Reply, Request, servers, tracker
from finetune.data.frames import filesystem as fs_frames
from finetune.schema_values import label
from finetune.synth import Example, Tool

SNAPSHOT = Path(__file__).with_name("mcp_catalogs.json")
"""tools/list of the five real servers (a copy of tests/gateway/risk/catalogs.json; a test keeps them equal)."""
KINDS = ("call", "which", "parallel", "none", "cannot", "chat", "result", "denied", "pending", "unknown", "foreign")
SHARES = (0.3, 0.12, 0.05, 0.08, 0.06, 0.04, 0.21, 0.07, 0.05, 0.02, 0.0)
"""Default share of each kind: most examples end in a call or answer after one. `foreign` (a request for an
MCP server answered in words while only one to three tools of an unrelated, made-up domain are offered: the
shape of BFCL's irrelevance questions) is off by default, so the default data stays as it was; ask for it
with ``--natural-mix foreign=...``."""


DOMAINS = {
    "time": "time zones",
    "git": "git repositories",
    "filesystem": "files and folders",
    "memory": "a knowledge graph",
    "everything": "the MCP demo server",
    "tracker": "issues and meetings",
}
PREFER = {"filesystem": fs_frames.PREFER}

_OPENERS = ["", "", "", "", "Hey, ", "Quick one: ", "Hi! ", "Sorry to bother you — ", "Okay, ", "Please: "]
_CLOSERS = ["", "", "", "", " Thanks!", " Thanks in advance.", " Cheers.", " ty", " Appreciate it."]
_BACKGROUND = {
    "time": ["I'm planning calls with people in several countries.", "We have a distributed team."],
    "git": [
        "I'm about to open a pull request.",
        "Something broke after yesterday's merge.",
        "Cleaning up before the release.",
    ],
    "filesystem": ["I'm tidying up my files.", "I'm preparing the monthly report.", "My disk is getting full."],
    "memory": ["Keep track of the people I work with.", "I'm building up notes about my contacts."],
    "everything": ["I'm testing the demo server.", "Just trying things out."],
    "tracker": ["We triage on Mondays.", "I'm organising the sprint."],
}
_CHAT = [
    ("What is the capital of Peru?", "Lima."),
    ("How many legs does a spider have?", "Eight."),
    ("Write a haiku about autumn.", "Red leaves drift and fall,\nthe maple lets go softly,\nwind keeps what it takes."),
    ("Great, cheers for the help earlier!", "You're welcome!"),
    ("What does 'ephemeral' mean?", "Lasting a very short time."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci."),
    ("Is a tomato a fruit?", "Botanically, yes: it's a berry."),
]
_UNABLE = {
    "time": [
        "Set an alarm for 6:30 tomorrow.",
        "What's the weather like in Tokyo?",
        "Remind me at 5 pm to call Dana.",
        "How many days are left until New Year?",
    ],
    "git": [
        "Delete the branch feature/login-form in /srv/git/website.",
        "Push my commits in /work/warden to origin.",
        "Merge develop into main in /home/dana/src/billing-api.",
        "Rebase my branch onto main in /srv/git/website.",
        "Clone https://github.com/acme/api into /srv/git/api.",
    ],
    "filesystem": [
        "Delete /tmp/uploads/draft.txt.",
        "Make /home/dana/notes/todo.md read-only.",
        "Zip the folder /srv/data/exports.",
        "Email /srv/data/exports/budget.csv to Li.",
    ],
    "memory": [
        "Send Dana an email about tomorrow.",
        "Export the whole graph to /tmp/graph.csv.",
        "Translate Priya's notes into German.",
    ],
    "everything": ["Multiply 6 by 7.", "What's 120 divided by 8?", "Show me a huge high-resolution photo."],
    "tracker": ["Delete issue WEB-142.", "Add a comment to OPS-7 saying it's blocked.", "Cancel the design sync."],
}
"""Requests close to what a server's tools do that none of them can do: the right answer is text."""
_CANNOT = [
    "None of the tools I have here can do that.",
    "I can't do that: the tools I have for {domain} don't offer it.",
    "That isn't something these tools can do, so I won't call one.",
]
_DECLINES = [
    "I can't do that with the tools I have here: they only cover {domains}.",
    "None of my tools can do that — they're for {domains}.",
    "I don't have a tool for that; what I can reach here is {domains}.",
]


@dataclass(frozen=True, slots=True)
class Catalogs:
    by_server: dict[str, list[Tool]]
    """Server -> its tools as OpenAI tools, upstream names."""

    def tool(self, server: str, name: str) -> Tool:
        return next(t for t in self.by_server[server] if t["function"]["name"] == name)


def catalogs(path: Path = SNAPSHOT) -> Catalogs:
    """The real snapshots plus the tracker schemas, as OpenAI tools."""
    raw = json.loads(path.read_text())
    raw[tracker.SERVER] = tracker.TOOLS
    return Catalogs({s: [to_openai(t, f"{path.name}:{s}") for t in tools] for s, tools in raw.items()})


def _tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[_\-]+", name.lower()) if t and t != "git"}


def _public(server: str, tool: Tool, prefixed: bool) -> Tool:
    if not prefixed:
        return tool
    fn = tool["function"]
    return {"type": "function", "function": {**fn, "name": f"{server}__{fn['name']}"}}


def _near(cats: Catalogs, server: str, name: str) -> list[tuple[str, Tool]]:
    """Tools sharing a word with `name`: siblings on its server and same-verb tools on others."""
    words = _tokens(name)
    return [
        (s, t)
        for s, tools in cats.by_server.items()
        for t in tools
        if t["function"]["name"] != name and words & _tokens(t["function"]["name"])
    ]


def offer(cats: Catalogs, kind: str, server: str, name: str, rng: random.Random) -> list[tuple[str, Tool]]:
    """(server, tool) pairs offered; the target is among them unless `kind` is none."""
    near = _near(cats, server, name)
    if kind == "none":
        others = [(s, t) for s, t in near if s != server]
        spare = [(s, t) for s in rng.sample([s for s in cats.by_server if s != server], 2) for t in cats.by_server[s]]
        pool = others + rng.sample(spare, k=min(len(spare), rng.randint(1, 5)))
        return list({t["function"]["name"]: (s, t) for s, t in pool}.values())
    target = (server, cats.tool(server, name))
    if kind == "which" and near:
        offered = [target, *rng.sample(near, k=min(len(near), rng.randint(1, 5)))]
    elif rng.random() < 0.5:
        offered = [(server, t) for t in cats.by_server[server]]
    else:
        siblings = [(server, t) for t in cats.by_server[server] if t["function"]["name"] != name]
        offered = [target, *rng.sample(siblings, k=min(len(siblings), rng.randint(0, 4)))]
    if rng.random() < 0.3:
        other = rng.choice([s for s in cats.by_server if s != server])
        offered += [(other, t) for t in cats.by_server[other]]
    return offered


def _register(text: str, server: str, rng: random.Random) -> str:
    """Vary how the request is put: bare, with a greeting or thanks, after a sentence of background."""
    r = rng.random()
    if r < 0.2:
        return f"{rng.choice(_BACKGROUND[server])} {text}"
    if r < 0.3:
        return text.rstrip(".?!")
    opener = rng.choice(_OPENERS)
    if opener and text[:2].istitle() and not text.startswith(("I ", "I'")):  # "Okay, show me ..." ("WEB-142" stays)
        text = text[0].lower() + text[1:]
    return f"{opener}{text}{rng.choice(_CLOSERS)}"


def _call(*calls: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """The assistant turn making these (public name, arguments) calls."""
    fns = [{"name": name, "arguments": json.dumps(args, ensure_ascii=False)} for name, args in calls]
    return {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": fn} for fn in fns]}


def _answered(text: str, answer: str, tools: list[Tool]) -> Example:
    return {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": answer}], "tools": tools}


def _chat(cats: Catalogs, rng: random.Random) -> Example:
    server = rng.choice(list(cats.by_server))
    question, answer = rng.choice(_CHAT)
    return _answered(question, answer, cats.by_server[server])


def _cannot(cats: Catalogs, server: str, rng: random.Random) -> Example:
    offered = [(server, t) for t in cats.by_server[server]]
    if rng.random() < 0.3:
        other = rng.choice([s for s in cats.by_server if s != server])
        offered += [(other, t) for t in cats.by_server[other]]
    prefixed = rng.random() < 0.5
    text = _register(rng.choice(_UNABLE[server]), server, rng)
    answer = rng.choice(_CANNOT).format(domain=DOMAINS[server])
    return _answered(text, answer, [_public(s, t, prefixed) for s, t in offered])


_NEAR_DOMAINS = frozenset({"time", "file", "commit", "branch", "log", "backup", "meeting", "calendar_event", "ticket"})
"""Made-up domains that could serve a real server's request (time, files, git, the tracker): never `foreign`."""


def _foreign(text: str, rng: random.Random) -> Example:
    """`text` (a request one of the real servers would serve) while only 1-3 tools of one or two unrelated
    made-up domains (finetune.synth) are offered: the answer says no tool fits, naming what they are for."""
    picked = rng.sample([d for d in synth.domains() if d not in _NEAR_DOMAINS], k=rng.randint(1, 2))
    pool = synth.synthetic_catalog(rng, picked)
    tools = rng.sample(pool, k=min(len(pool), rng.randint(1, 3)))
    about = " and ".join(sorted({label(d) for d in picked}))
    return _answered(text, rng.choice(_DECLINES).format(domains=about), tools)


def example(cats: Catalogs, kind: str, rng: random.Random) -> Example:
    """One example of `kind` (see KINDS)."""
    if kind == "chat":
        return _chat(cats, rng)
    table = servers()
    server = rng.choice(list(table))
    if kind == "cannot":
        return _cannot(cats, server, rng)
    frames, replies = table[server]
    name = rng.choice([n for n, f in frames.items() if f])
    request: Request = rng.choice(frames[name])(rng)
    if kind == "foreign":
        return _foreign(_register(request.text, server, rng), rng)
    offered = offer(cats, kind, server, name, rng)
    offered_names = {t["function"]["name"] for _, t in offered}
    name = PREFER.get(server, {}).get(name, name) if PREFER.get(server, {}).get(name) in offered_names else name
    prefixed = rng.random() < 0.5
    tools = [_public(s, t, prefixed) for s, t in offered]
    rng.shuffle(tools)
    user = {"role": "user", "content": _register(request.text, server, rng)}
    if kind == "none":
        domains = sorted({DOMAINS[s] for s, _ in offered})
        return _answered(user["content"], rng.choice(_DECLINES).format(domains=" and ".join(domains)), tools)
    public = f"{server}__{name}" if prefixed else name
    if kind == "parallel":
        second = _second(server, frames, offered_names, request, rng)
        if second is not None:
            other, more = second
            both = f"{request.text} {rng.choice(_AND)}{more.text[0].lower()}{more.text[1:]}"
            user["content"] = _register(both, server, rng)
            message = _call((public, request.arguments), (f"{server}__{other}" if prefixed else other, more.arguments))
            return {"messages": [user, message], "tools": tools}
    messages: list[dict[str, Any]] = [user, _call((public, request.arguments))]
    if kind in ("result", "denied", "pending", "unknown"):
        messages += turns.ending(*_ending(kind, replies[name], request, rng, server=server, name=name, public=public))
    return {"messages": messages, "tools": tools}


_AND = ["Also, ", "And ", "Oh, and ", "Plus: "]


def _second(
    server: str, frames: dict[str, list[Frame]], offered: set[str], first: Request, rng: random.Random
) -> tuple[str, Request] | None:
    """Another request to the same server (a tool that is offered), for a second call in the same message."""
    names = [n for n, f in frames.items() if f and n in offered and n not in PREFER.get(server, {})]
    for _ in range(4 if names else 0):
        name = rng.choice(names)
        more = rng.choice(frames[name])(rng)
        if more.arguments != first.arguments and more.text[:1].isupper() and more.text[1:2].islower():
            return name, more
    return None


def _ending(
    kind: str, reply: Reply, request: Request, rng: random.Random, *, server: str, name: str, public: str
) -> tuple[str, str]:
    if kind == "denied":
        return turns.denied(public, server, name, rng)
    if kind == "pending":
        return turns.pending(public, server, name, rng)
    if kind == "unknown":
        return turns.unknown(public, rng)
    return reply(request.arguments, rng)


def mix(spec: str, base: tuple[float, ...] = SHARES) -> tuple[float, ...]:
    """`base` with the shares a spec such as "none=0.14,cannot=0.08" names replaced (weights, not percentages:
    they need not sum to 1). Raises ValueError naming the bad part."""
    shares = dict(zip(KINDS, base, strict=True))
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kind, sep, value = (p.strip() for p in part.partition("="))
        if not sep or kind not in shares:
            raise ValueError(f"{part!r}: expected kind=share with kind one of {', '.join(KINDS)}")
        try:
            share = float(value)
        except ValueError:
            raise ValueError(f"{part!r}: the share must be a number") from None
        if not (math.isfinite(share) and share >= 0):
            raise ValueError(f"{part!r}: the share must be a finite number >= 0")
        shares[kind] = share
    if not sum(shares.values()):
        raise ValueError("at least one kind needs a share above 0")
    return tuple(shares[k] for k in KINDS)


def natural(
    n: int,
    seed: int,
    shares: tuple[float, ...] = SHARES,
    cats: Catalogs | None = None,
    guard: leakage.Guard | None = None,
) -> list[Example]:
    """`n` examples drawn with `seed`, kinds in `shares` (aligned with KINDS). With a `guard`
    (finetune.data.leakage), an example whose request is a benchmark or eval question is drawn again."""
    if len(shares) != len(KINDS) or any(s < 0 for s in shares) or not sum(shares):
        raise ValueError(f"shares must be {len(KINDS)} non-negative numbers for {', '.join(KINDS)}")
    rng = random.Random(seed)
    cats = cats or catalogs()
    out: list[Example] = []
    while len(out) < n:
        ex = example(cats, rng.choices(KINDS, weights=shares)[0], rng)
        if guard is None or not leakage.leaks([ex], guard):
            out.append(ex)
    return out
