"""Frames for npm `@modelcontextprotocol/server-memory`: arrays of objects built from what people say."""

from __future__ import annotations

import json
import random
from typing import Any

from finetune.data import values as v
from finetune.data.frames import Frame, Reply, ask
from finetune.data.values import Said

SERVER = "memory"


def _person(rng: random.Random) -> Said:
    return v.pick(rng, v.PEOPLE)


def _entities(rng: random.Random) -> Said:
    name, fact = rng.choice(v.PEOPLE), rng.choice(v.FACTS)
    if rng.random() < 0.5:
        return Said([{"name": name, "entityType": "person", "observations": [fact]}], f"{name}, a person who {fact}")
    org = rng.choice(v.ORGS)
    return Said([{"name": org, "entityType": "organization", "observations": []}], f"the organization {org}")


def _relations(rng: random.Random) -> Said:
    a, b = rng.sample(v.PEOPLE, 2)
    kind = rng.choice(v.RELATIONS)
    return Said([{"from": a, "to": b, "relationType": kind}], f"{a} {kind.replace('_', ' ')} {b}")


def _notes(rng: random.Random) -> Said:
    name, fact = rng.choice(v.PEOPLE), rng.choice(v.FACTS)
    return Said([{"entityName": name, "contents": [fact]}], f"{name} {fact}")


def _deletions(rng: random.Random) -> Said:
    name, fact = rng.choice(v.PEOPLE), rng.choice(v.FACTS)
    return Said([{"entityName": name, "observations": [fact]}], f"that {name} {fact}")


def _names(rng: random.Random) -> Said:
    return v.several(rng, v.PEOPLE, 1, 3)


def _topic(rng: random.Random) -> Said:
    return v.pick(rng, ["Lisbon", "billing", "peanuts", "mobile team", "Acme Corp", "Portuguese"])


FRAMES: dict[str, list[Frame]] = {
    "create_entities": [
        ask(
            [
                "Remember {entities}.",
                "Add {entities} to your memory.",
                "Keep a record of {entities} in the knowledge graph.",
            ],
            entities=_entities,
        )
    ],
    "create_relations": [ask(["Note in the graph that {relations}.", "Remember: {relations}."], relations=_relations)],
    "add_observations": [
        ask(["Add to what you know: {observations}.", "Update your notes — {observations}."], observations=_notes)
    ],
    "delete_entities": [
        ask(["Forget everything about {entityNames}.", "Remove {entityNames} from your memory."], entityNames=_names)
    ],
    "delete_observations": [
        ask(["That's outdated: forget {deletions}.", "Drop the note {deletions}."], deletions=_deletions)
    ],
    "delete_relations": [
        ask(["That's no longer true: {relations}. Remove it.", "Unlink this: {relations}."], relations=_relations)
    ],
    "read_graph": [
        ask(
            [
                "What do you remember about everything?",
                "Dump your whole knowledge graph.",
                "Show me all you have stored in memory.",
            ]
        )
    ],
    "search_nodes": [
        ask(
            [
                "What do you know that mentions {query}?",
                "Search your memory for {query}.",
                "Anything stored about {query}?",
            ],
            query=_topic,
        )
    ],
    "open_nodes": [ask(["Pull up what you have on {names}.", "Show me the entries for {names}."], names=_names)],
}


def _found(args: dict[str, Any], rng: random.Random) -> tuple[str, str]:
    """One entity: the first one asked for by name, or someone whose note mentions the query (or nothing)."""
    query = args.get("query")
    fact = next((f for f in v.FACTS if query and query.lower() in f.lower()), None) if query else rng.choice(v.FACTS)
    if fact is None:
        return json.dumps({"entities": [], "relations": []}, indent=2), f"Nothing in memory mentions {query}."
    name = (args.get("names") or [rng.choice(v.PEOPLE)])[0]
    graph = {"entities": [{"name": name, "entityType": "person", "observations": [fact]}], "relations": []}
    return json.dumps(graph, indent=2), f"I have one entry: {name}, who {fact}."


def _done(answer: str) -> Reply:
    def reply(args: dict[str, Any], rng: random.Random) -> tuple[str, str]:
        return json.dumps({"success": True, "message": "ok"}, indent=2), answer

    return reply


def _echo_back(key: str, answer: str) -> Reply:
    def reply(args: dict[str, Any], rng: random.Random) -> tuple[str, str]:
        return json.dumps({key: args[key]}, indent=2), answer

    return reply


REPLIES: dict[str, Reply] = {
    "create_entities": _echo_back("entities", "Saved."),
    "create_relations": _echo_back("relations", "Noted."),
    "add_observations": lambda args, rng: (
        json.dumps(
            {
                "results": [
                    {"entityName": o["entityName"], "addedObservations": o["contents"]} for o in args["observations"]
                ]
            },
            indent=2,
        ),
        "Added.",
    ),
    "delete_entities": _done("They're forgotten."),
    "delete_observations": _done("Removed that note."),
    "delete_relations": _done("Removed."),
    "read_graph": _found,
    "search_nodes": _found,
    "open_nodes": _found,
}
