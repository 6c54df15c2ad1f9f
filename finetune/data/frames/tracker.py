"""A hand-made server in the shapes real MCP schemas have and the five snapshots lack.

FastMCP / pydantic servers publish `$defs` with `$ref`, `anyOf [..., null]` with `default: null`,
enums behind a `$ref`, arrays of objects with their own defaults, nested objects and long
descriptions. `TOOLS` are such schemas (an issue tracker and a calendar); their frames leave every
defaulted field out unless the person asks for something else.
"""

from __future__ import annotations

import json
import random
from typing import Any

from finetune.data import values as v
from finetune.data.frames import Frame, Reply, ask
from finetune.data.values import Said

SERVER = "tracker"

_LABEL = {
    "properties": {
        "name": {"title": "Name", "type": "string"},
        "color": {"default": "grey", "title": "Color", "type": "string"},
    },
    "required": ["name"],
    "title": "Label",
    "type": "object",
}
_PRIORITY = {"enum": ["low", "medium", "high", "urgent"], "title": "Priority", "type": "string"}
_SLOT = {
    "properties": {
        "date": {"format": "date", "title": "Date", "type": "string"},
        "start": {
            "description": "Local start time, 24-hour HH:MM.",
            "pattern": "^[0-2][0-9]:[0-5][0-9]$",
            "title": "Start",
            "type": "string",
        },
        "duration_minutes": {
            "default": 30,
            "minimum": 5,
            "maximum": 480,
            "title": "Duration Minutes",
            "type": "integer",
        },
    },
    "required": ["date", "start"],
    "title": "Slot",
    "type": "object",
}
_ATTENDEE = {
    "properties": {
        "email": {"format": "email", "title": "Email", "type": "string"},
        "optional": {"default": False, "title": "Optional", "type": "boolean"},
    },
    "required": ["email"],
    "title": "Attendee",
    "type": "object",
}

TOOLS: list[dict[str, Any]] = [
    {
        "name": "create_issue",
        "description": "Open a new issue in a project of the tracker. The issue starts in the backlog; priority "
        "defaults to medium and labels to none. Use this only for new work, never to comment on or "
        "update an existing issue (use update_issue for that).",
        "inputSchema": {
            "$defs": {"Label": _LABEL, "Priority": _PRIORITY},
            "properties": {
                "project": {"description": "Project key, e.g. 'WEB' or 'OPS'.", "title": "Project", "type": "string"},
                "title": {"title": "Title", "type": "string"},
                "priority": {"$ref": "#/$defs/Priority", "default": "medium"},
                "labels": {"default": [], "items": {"$ref": "#/$defs/Label"}, "title": "Labels", "type": "array"},
                "assignee": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "title": "Assignee"},
            },
            "required": ["project", "title"],
            "title": "create_issueArguments",
            "type": "object",
        },
    },
    {
        "name": "update_issue",
        "description": "Change the state or priority of an existing issue, given its key.",
        "inputSchema": {
            "$defs": {"Priority": _PRIORITY},
            "properties": {
                "key": {"description": "Issue key such as WEB-142.", "title": "Key", "type": "string"},
                "state": {
                    "anyOf": [{"enum": ["backlog", "in_progress", "done"], "type": "string"}, {"type": "null"}],
                    "default": None,
                    "title": "State",
                },
                "priority": {"anyOf": [{"$ref": "#/$defs/Priority"}, {"type": "null"}], "default": None},
            },
            "required": ["key"],
            "title": "update_issueArguments",
            "type": "object",
        },
    },
    {
        "name": "search_issues",
        "description": "Search issues by free text across all projects.",
        "inputSchema": {
            "properties": {
                "text": {"title": "Text", "type": "string"},
                "state": {"default": "open", "enum": ["open", "closed", "all"], "title": "State", "type": "string"},
                "limit": {"default": 20, "maximum": 100, "minimum": 1, "title": "Limit", "type": "integer"},
            },
            "required": ["text"],
            "title": "search_issuesArguments",
            "type": "object",
        },
    },
    {
        "name": "schedule_meeting",
        "description": "Put a meeting on the shared calendar and invite people. Times are local to the organiser.",
        "inputSchema": {
            "$defs": {"Attendee": _ATTENDEE, "Slot": _SLOT},
            "properties": {
                "topic": {"title": "Topic", "type": "string"},
                "when": {"$ref": "#/$defs/Slot"},
                "attendees": {
                    "items": {"$ref": "#/$defs/Attendee"},
                    "minItems": 1,
                    "title": "Attendees",
                    "type": "array",
                },
            },
            "required": ["topic", "when", "attendees"],
            "title": "schedule_meetingArguments",
            "type": "object",
        },
    },
]

_PROJECTS = ["WEB", "OPS", "API", "MOBILE"]
_BUGS = [
    "Checkout button does nothing on Safari",
    "Nightly backup job times out",
    "Typo on the pricing page",
    "Search returns archived products",
    "Password reset email never arrives",
]
_EMAILS = ["dana@example.com", "li.wei@acme.io", "ops@warden.dev", "kim@corp.net", "sam.ortiz@mail.org"]


def _project(rng: random.Random) -> Said:
    p = rng.choice(_PROJECTS)
    return Said(p, rng.choice([p, f"the {p} project"]))


def _urgent(rng: random.Random) -> Said:
    p = rng.choice(["low", "high", "urgent"])
    return Said(p, {"low": "it can wait", "high": "it's important", "urgent": "it's urgent"}[p])


def _labels(rng: random.Random) -> Said:
    names = rng.sample(["bug", "frontend", "backend", "security", "docs"], k=rng.randint(1, 2))
    return Said([{"name": n} for n in names], " and ".join(names))


def _slot(rng: random.Random) -> Said:
    date, start = rng.choice(["2026-03-14", "2026-04-02", "2026-05-20"]), rng.choice(["09:30", "14:00", "16:15"])
    if rng.random() < 0.5:
        return Said({"date": date, "start": start}, f"on {date} at {start}")
    minutes = rng.choice([15, 45, 60, 90])
    return Said(
        {"date": date, "start": start, "duration_minutes": minutes}, f"on {date} at {start} for {minutes} minutes"
    )


def _attendees(rng: random.Random) -> Said:
    people = rng.sample(_EMAILS, k=rng.randint(1, 3))
    return Said([{"email": e} for e in people], v.join(people))


FRAMES: dict[str, list[Frame]] = {
    "create_issue": [
        ask(
            ["File a bug in {project} — {title}.", "Open a ticket in {project} called {title}."],
            project=_project,
            title=lambda rng: v.quoted(rng, _BUGS),
        ),
        ask(
            ["Open a ticket in {project} saying {title}; {priority}.", "New issue for {project}, {title}; {priority}."],
            project=_project,
            title=lambda rng: v.quoted(rng, _BUGS),
            priority=_urgent,
        ),
        ask(
            ["File {title} in {project} and tag it {labels}."],
            project=_project,
            title=lambda rng: v.quoted(rng, _BUGS),
            labels=_labels,
        ),
        ask(
            ["Put {title} in {project} and give it to {assignee}."],
            project=_project,
            title=lambda rng: v.quoted(rng, _BUGS),
            assignee=lambda rng: v.pick(rng, v.PEOPLE),
        ),
    ],
    "update_issue": [
        ask(
            ["{key} is finished, close it out.", "Mark {key} as done."],
            key=lambda rng: v.pick(rng, ["WEB-142", "OPS-7", "API-88"]),
            state=lambda rng: Said("done", ""),
        ),
        ask(
            ["I've started on {key}.", "Move {key} to in progress."],
            key=lambda rng: v.pick(rng, ["WEB-12", "MOBILE-3"]),
            state=lambda rng: Said("in_progress", ""),
        ),
    ],
    "search_issues": [
        ask(
            ["Is there already a ticket about {text}?", "Find issues mentioning {text}."],
            text=lambda rng: v.pick(rng, ["Safari", "backup", "pricing page", "password reset"]),
        ),
        ask(
            ["Find {state} issues mentioning {text}, at most {limit}."],
            text=lambda rng: v.pick(rng, ["Safari", "backup"]),
            state=lambda rng: v.pick(rng, ["closed", "all"]),
            limit=lambda rng: v.count(rng, 2, 10),
        ),
    ],
    "schedule_meeting": [
        ask(
            ["Set up {topic} {when} with {attendees}.", "Book {topic} {when}; invite {attendees}."],
            topic=lambda rng: v.quoted(rng, ["Q3 planning", "Incident review", "Design sync"]),
            when=_slot,
            attendees=_attendees,
        ),
    ],
}


def _reply(answer: str) -> Reply:
    def reply(args: dict[str, Any], rng: random.Random) -> tuple[str, str]:
        key = f"{args.get('project', 'WEB')}-{rng.randint(100, 999)}"
        result = {"ok": True, "key": args.get("key", key)}
        return json.dumps(result), answer.format(key=result["key"], n=rng.randint(0, 4))

    return reply


REPLIES: dict[str, Reply] = {
    "create_issue": _reply("Filed as {key}."),
    "update_issue": _reply("{key} is updated."),
    "search_issues": lambda args, rng: (
        json.dumps({"issues": [{"key": "WEB-142", "title": _BUGS[0]}]}),
        f'One match: WEB-142, "{_BUGS[0]}".',
    ),
    "schedule_meeting": _reply("It's on the calendar."),
}
