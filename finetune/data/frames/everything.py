"""Frames for npm `@modelcontextprotocol/server-everything`: enums, numbers and defaults to leave out."""

from __future__ import annotations

import json
import random
from typing import Any

from finetune.data import values as v
from finetune.data.frames import Frame, Reply, ask
from finetune.data.values import Said

SERVER = "everything"


def _number(rng: random.Random) -> Said:
    n = rng.choice([rng.randint(2, 999), round(rng.uniform(0.5, 99), 1)])
    return Said(n, str(n))


def _kind(rng: random.Random) -> Said:
    k = rng.choice(["error", "success", "debug"])
    return Said(k, {"error": "an error", "success": "a success", "debug": "a debug"}[k])


def _city(rng: random.Random) -> Said:
    c = rng.choice(["New York", "Chicago", "Los Angeles"])
    return Said(c, c)


def _links(rng: random.Random) -> Said:
    return v.count(rng, 4, 10)


_URLS = ["https://example.com/login", "https://auth.example.org/consent?id=42", "https://id.example.net/verify"]


FRAMES: dict[str, list[Frame]] = {
    "echo": [
        ask(
            ["Repeat this back to me exactly: {message}", "Echo {message}.", "Say {message} back."],
            message=lambda rng: v.quoted(rng, v.QUOTES),
        )
    ],
    "get-sum": [
        ask(["What's {a} plus {b}?", "Add {a} and {b}.", "I owe {a} and then {b} more — total?"], a=_number, b=_number)
    ],
    "get-annotated-message": [
        ask(
            ["Show me what {messageType} notice looks like.", "Give me {messageType} sample with its annotations."],
            messageType=_kind,
        ),
        ask(
            ["Show me {messageType} notice, and add the example picture."],
            messageType=_kind,
            includeImage=lambda rng: Said(True, ""),
        ),
    ],
    "get-env": [ask(["Which environment variables does the server see?", "Print the server's environment."])],
    "get-tiny-image": [ask(["Send me the little MCP logo.", "Show me the tiny test image."])],
    "get-resource-links": [
        ask(["Give me some resource links.", "List a few resources I can open."]),
        ask(["Give me {count} resource links.", "I want {count} links to resources."], count=_links),
    ],
    "get-resource-reference": [
        ask(["Give me a reference to a resource.", "Point me at a text resource."]),
        ask(
            ["Reference binary resource number {resourceId}."],
            resourceType=lambda rng: Said("Blob", ""),
            resourceId=lambda rng: v.count(rng, 2, 9),
        ),
    ],
    "get-structured-content": [
        ask(["What's the weather like in {location}?", "Conditions in {location} right now?"], location=_city)
    ],
    "gzip-file-as-resource": [ask(["Compress the default README into a gzip file.", "gzip the sample file for me."])],
    "toggle-simulated-logging": [ask(["Turn the fake log messages on or off.", "Flip the simulated logging."])],
    "toggle-subscriber-updates": [
        ask(["Toggle the resource update notifications.", "Switch the simulated subscription updates."])
    ],
    "trigger-long-running-operation": [
        ask(["Start a long operation so I can watch the progress.", "Kick off the slow demo task."]),
        ask(["Run the long demo operation for {duration} seconds."], duration=lambda rng: v.count(rng, 11, 20)),
    ],
    "simulate-research-query": [
        ask(["Research {topic} for me.", "Look into {topic} and report back."], topic=lambda rng: v.pick(rng, v.TOPICS))
    ],
    "get-roots-list": [ask(["Which folders have I shared with the server?", "What roots can the server see from me?"])],
    "trigger-elicitation-request": [
        ask(["Have the server ask me a few questions.", "Start the demo form that asks for my details."])
    ],
    "trigger-url-elicitation": [
        ask(
            ["Send me to {url} to finish signing in.", "I need to complete the flow at {url}; open it for me."],
            url=lambda rng: Said(u := rng.choice(_URLS), u),
        )
    ],
    "trigger-sampling-request": [
        ask(
            ["Have the server ask the model: {prompt}", "Let the server sample an answer to {prompt}"],
            prompt=lambda rng: v.quoted(rng, v.QUOTES),
        )
    ],
}


def _fixed(result: str, answer: str) -> Reply:
    def reply(args: dict[str, Any], rng: random.Random) -> tuple[str, str]:
        fields = {k: x for k, x in args.items() if not isinstance(x, list | dict)}
        return result.format(**fields), answer.format(**fields)

    return reply


def _sum(args: dict[str, Any], rng: random.Random) -> tuple[str, str]:
    total = round(args["a"] + args["b"], 2)
    return f"The sum of {args['a']} and {args['b']} is {total}.", f"{args['a']} + {args['b']} = {total}."


def _weather(args: dict[str, Any], rng: random.Random) -> tuple[str, str]:
    w: dict[str, Any] = {
        "temperature": rng.randint(-5, 35),
        "conditions": rng.choice(["Sunny", "Cloudy", "Light rain"]),
        "humidity": rng.randint(20, 95),
    }
    answer = f"In {args['location']}: {w['conditions'].lower()}, {w['temperature']} °C, humidity {w['humidity']}%."
    return json.dumps(w), answer


REPLIES: dict[str, Reply] = {
    "echo": _fixed("Echo: {message}", "It says: {message}"),
    "get-sum": _sum,
    "get-annotated-message": _fixed("{messageType} message", "Here is the {messageType} example."),
    "get-env": _fixed(
        '{{"PATH": "/usr/bin", "HOME": "/home/mcp"}}', "The server sees PATH=/usr/bin and HOME=/home/mcp."
    ),
    "get-tiny-image": _fixed("This is a tiny image:", "Here is the tiny MCP logo."),
    "get-resource-links": _fixed("Here are resource links to resources", "I got the resource links."),
    "get-resource-reference": _fixed("Returning resource reference for Resource", "Here's the reference."),
    "get-structured-content": _weather,
    "gzip-file-as-resource": _fixed("Compressed README.md.gz", "It's compressed as README.md.gz."),
    "toggle-simulated-logging": _fixed("Started simulated, random-leveled logging", "Simulated logging is on."),
    "toggle-subscriber-updates": _fixed("Started simulated resource updates", "Updates are on."),
    "trigger-long-running-operation": _fixed("Long running operation completed.", "The operation finished."),
    "simulate-research-query": _fixed("Research complete on {topic}", "The research on {topic} is done."),
    "get-roots-list": _fixed(
        "Current MCP Roots (1 total): file:///home/user/project", "You share one root: the project."
    ),
    "trigger-elicitation-request": _fixed("User provided the requested information.", "You filled in the form."),
    "trigger-url-elicitation": _fixed("URL elicitation completed for {url}", "The flow at {url} is complete."),
    "trigger-sampling-request": _fixed("LLM sampling result: done", "The model answered the server's prompt."),
}
