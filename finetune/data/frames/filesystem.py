"""Frames for npm `@modelcontextprotocol/server-filesystem`: paths in prose, near-miss readers and listers."""

from __future__ import annotations

import json
import random
from typing import Any

from finetune.data import values as v
from finetune.data.frames import Frame, Reply, ask
from finetune.data.values import Said

SERVER = "filesystem"


def _dir(rng: random.Random) -> Said:
    return v.pick(rng, v.DIRS)


def _lines(rng: random.Random) -> Said:
    return v.count(rng, 3, 20)


def _paths(rng: random.Random) -> Said:
    d = rng.choice(v.DIRS)
    return v.several(rng, [f"{d}/{f}" for f in v.DOCS], 2, 3)


def _content(rng: random.Random) -> Said:
    return v.quoted(rng, v.QUOTES)


def _glob(rng: random.Random) -> Said:
    pattern, words = rng.choice(v.GLOBS)
    return Said(pattern, f"{words} ({pattern})" if rng.random() < 0.5 else pattern)


def _edits(rng: random.Random) -> Said:
    old, new = rng.sample(v.QUOTES, 2)
    return Said([{"oldText": old, "newText": new}], f'"{old}" with "{new}"')


def _new_dir(rng: random.Random) -> Said:
    p = f"{rng.choice(v.DIRS)}/{rng.choice(['archive', '2026', 'drafts', 'backup', 'old'])}"
    return Said(p, p)


def _excludes(rng: random.Random) -> Said:
    values = rng.sample(["node_modules", ".git", "*.tmp", "__pycache__", "dist"], k=rng.randint(1, 2))
    return Said(values, v.join(values))


FRAMES: dict[str, list[Frame]] = {
    "read_text_file": [
        ask(
            [
                "What does {path} say?",
                "Open {path} and show me what's in it.",
                "cat {path}",
                "I wrote some notes in {path} last week; can you pull them up?",
            ],
            path=v.file_path,
        ),
        ask(
            ["Show me only the last {tail} lines of {path}.", "What are the final {tail} lines in {path}?"],
            path=v.file_path,
            tail=_lines,
        ),
        ask(
            ["Give me the first {head} lines of {path}.", "Just the top {head} lines of {path}, please."],
            path=v.file_path,
            head=_lines,
        ),
    ],
    "read_file": [],  # filled below: the deprecated twin of read_text_file, asked for the same way
    "read_multiple_files": [
        ask(["Read {paths} for me.", "Open these together: {paths}.", "Compare what {paths} contain."], paths=_paths)
    ],
    "write_file": [
        ask(
            [
                "Create {path} containing just {content}.",
                "Write {content} into {path}, replacing what's there.",
                "Save a file at {path} that says {content}.",
            ],
            path=v.file_path,
            content=_content,
        )
    ],
    "edit_file": [
        ask(["In {path}, replace {edits}.", "Fix {path}: change {edits}."], path=v.file_path, edits=_edits),
    ],
    "create_directory": [
        ask(["Make a folder {path}.", "mkdir {path}", "I need a new directory at {path}."], path=_new_dir)
    ],
    "list_directory": [
        ask(
            ["What's in {path}?", "List the files in {path}.", "ls {path}", "Which files did I put in {path}?"],
            path=_dir,
        )
    ],
    "list_directory_with_sizes": [
        ask(["How big are the files in {path}?", "List {path} with file sizes."], path=_dir),
        ask(
            ["List {path} with sizes, biggest first.", "Which files in {path} take the most space? Biggest first."],
            path=_dir,
            sortBy=lambda rng: Said("size", ""),
        ),
    ],
    "directory_tree": [
        ask(["Show me the folder structure under {path}.", "Print the whole tree of {path} as JSON."], path=_dir),
        ask(["Show the tree of {path} but skip {excludePatterns}."], path=_dir, excludePatterns=_excludes),
    ],
    "move_file": [
        ask(
            ["Move {source} to {destination}.", "Rename {source} to {destination}."],
            source=v.file_path,
            destination=v.file_path,
        )
    ],
    "search_files": [
        ask(
            ["Find all {pattern} under {path}.", "Are there any {pattern} somewhere in {path}?"],
            path=_dir,
            pattern=_glob,
        ),
        ask(
            ["Find {pattern} in {path}, ignoring {excludePatterns}."],
            path=_dir,
            pattern=_glob,
            excludePatterns=_excludes,
        ),
    ],
    "get_file_info": [
        ask(
            [
                "When was {path} last modified, and how big is it?",
                "Permissions and size of {path}?",
                "Give me the metadata for {path}.",
            ],
            path=v.file_path,
        )
    ],
    "list_allowed_directories": [
        ask(
            [
                "Which folders are you allowed to touch?",
                "Where on disk can you read files?",
                "What directories do you have access to?",
            ]
        )
    ],
    "read_media_file": [
        ask(
            ["Load the image {path} so you can look at it.", "Open the picture at {path}."],
            path=lambda rng: v.pick(rng, [f"{d}/photo-{n}.png" for d in v.DIRS for n in (1, 7)]),
        )
    ],
}
FRAMES["read_file"] = FRAMES["read_text_file"]
PREFER = {"read_file": "read_text_file"}
"""When both are offered, the request goes to the one the server recommends (read_file is deprecated)."""


def _reply(result: str, answer: str) -> Reply:
    def reply(args: dict[str, Any], rng: random.Random) -> tuple[str, str]:
        fields = {
            k: (", ".join(map(str, x)) if isinstance(x, list) and x and isinstance(x[0], str) else x)
            for k, x in args.items()
        }
        fields.setdefault("path", "")
        fields["quote"], fields["n"] = rng.choice(v.QUOTES), rng.randint(2, 40)
        return result.format(**fields), answer.format(**fields)

    return reply


REPLIES: dict[str, Reply] = {
    "read_text_file": _reply("{quote}\n", '{path} says: "{quote}".'),
    "read_file": _reply("{quote}\n", '{path} says: "{quote}".'),
    "read_multiple_files": _reply("{paths}:\n{quote}\n", 'They all say the same thing: "{quote}".'),
    "write_file": _reply("Successfully wrote to {path}", "Done, {path} is written."),
    "edit_file": _reply("```diff\n--- {path}\n+++ {path}\n```", "{path} is edited."),
    "create_directory": _reply("Successfully created directory {path}", "Created {path}."),
    "list_directory": _reply(
        "[FILE] notes.md\n[FILE] budget.csv\n[DIR] old", "{path} holds notes.md, budget.csv and a folder old."
    ),
    "list_directory_with_sizes": _reply(
        "[FILE] budget.csv  {n} KB\n[FILE] notes.md  2 KB\n\nTotal: 2 files",
        "budget.csv is the biggest at {n} KB; notes.md is 2 KB.",
    ),
    "directory_tree": lambda args, rng: (
        json.dumps([{"name": "notes.md", "type": "file"}, {"name": "old", "type": "directory", "children": []}]),
        f"{args['path']} has notes.md and an empty folder old.",
    ),
    "move_file": _reply("Successfully moved {source} to {destination}", "Moved it to {destination}."),
    "search_files": _reply(
        "{path}/a/report.md\n{path}/b/notes.md", "Two matches: {path}/a/report.md and {path}/b/notes.md."
    ),
    "get_file_info": _reply(
        "size: {n}KB\nmodified: Mon Mar 02 2026\npermissions: 644",
        "{path} is {n} KB, last modified on 2 March 2026, permissions 644.",
    ),
    "list_allowed_directories": _reply(
        "Allowed directories:\n/home/dana/notes\n/srv/data/exports", "I can use /home/dana/notes and /srv/data/exports."
    ),
    "read_media_file": _reply("[image/png, 4 KB]", "The image {path} is loaded (a 4 KB PNG)."),
}
