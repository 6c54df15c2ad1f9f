"""Frames for PyPI `mcp-server-git`: every tool takes the repository's path, which people put in prose."""

from __future__ import annotations

import random
from typing import Any

from finetune.data import values as v
from finetune.data.frames import Frame, Reply, ask
from finetune.data.values import Said

SERVER = "git"


def _branch(rng: random.Random) -> Said:
    return v.pick(rng, v.BRANCHES)


def _new_branch(rng: random.Random) -> Said:
    return v.pick(rng, v.NEW_BRANCHES)


def _sha(rng: random.Random) -> Said:
    return v.pick(rng, v.SHAS)


def _context(rng: random.Random) -> Said:
    n = rng.choice([0, 1, 5, 8, 10, 20])
    return Said(n, str(n))


def _files(rng: random.Random) -> Said:
    return v.several(rng, v.FILES, 1, 3)


def _message(rng: random.Random) -> Said:
    return v.quoted(rng, v.COMMIT_MESSAGES)


def _commits(rng: random.Random) -> Said:
    """A number of commits other than git_log's default (10): asking for the default is leaving it out."""
    said = v.count(rng, 1, 20) if rng.random() < 0.9 else Said(25, "25")
    return said if said.value != 10 else Said(12, rng.choice(["12", "twelve"]))


def _since(rng: random.Random) -> Said:
    return v.pick(rng, v.SINCE)


def _revision(rng: random.Random) -> Said:
    sha, f = rng.choice(v.SHAS), rng.choice(v.FILES)
    value = rng.choice([sha, f"HEAD~{rng.randint(1, 5)}", f"{sha}:{f}"])
    return Said(value, value)


def _branch_kind(rng: random.Random) -> Said:
    kind = rng.choice(["local", "remote", "all"])
    return Said(kind, {"local": "local", "remote": "remote", "all": "local and remote"}[kind])


FRAMES: dict[str, list[Frame]] = {
    "git_status": [
        ask(
            [
                "What's the state of {repo_path}? Anything uncommitted?",
                "git status for {repo_path}",
                "Did I leave changes lying around in {repo_path}?",
                "Which files have I touched in {repo_path} since the last commit?",
                "Before I switch tasks: is {repo_path} clean?",
            ],
            repo_path=v.repo,
        )
    ],
    "git_diff_unstaged": [
        ask(
            [
                "Show me what I've changed in {repo_path} but not staged yet.",
                "unstaged changes in {repo_path}?",
                "What edits in {repo_path} haven't been added to the index?",
            ],
            repo_path=v.repo,
        ),
        ask(
            ["Show the unstaged changes in {repo_path} with {context_lines} lines around each change."],
            repo_path=v.repo,
            context_lines=_context,
        ),
    ],
    "git_diff_staged": [
        ask(
            [
                "What's staged for the next commit in {repo_path}?",
                "Show me the diff of what I already added in {repo_path}.",
                "I'm about to commit in {repo_path} — what exactly is in the index?",
            ],
            repo_path=v.repo,
        ),
        ask(
            ["Staged diff for {repo_path}, {context_lines} lines of surrounding code please."],
            repo_path=v.repo,
            context_lines=_context,
        ),
    ],
    "git_diff": [
        ask(
            [
                "How does my working tree in {repo_path} differ from {target}?",
                "Compare {repo_path} against {target}.",
                "What changed in {repo_path} relative to {target}?",
            ],
            repo_path=v.repo,
            target=_branch,
        ),
        ask(["Diff {repo_path} against commit {target}."], repo_path=v.repo, target=_sha),
    ],
    "git_commit": [
        ask(
            [
                "Commit the staged work in {repo_path} as {message}.",
                "Record what's staged in {repo_path}; describe it with {message}.",
                "ok, commit it in {repo_path}: {message}",
            ],
            repo_path=v.repo,
            message=_message,
        )
    ],
    "git_add": [
        ask(
            [
                "Stage {files} in {repo_path}.",
                "Add {files} to the index of {repo_path}.",
                "I finished editing {files} — put them in the staging area of {repo_path}.",
            ],
            repo_path=v.repo,
            files=_files,
        )
    ],
    "git_reset": [
        ask(
            [
                "Unstage everything in {repo_path}.",
                "I staged the wrong things in {repo_path}; clear the index.",
                "Take all staged changes in {repo_path} back out of the index.",
            ],
            repo_path=v.repo,
        )
    ],
    "git_log": [
        ask(
            [
                "What has been committed in {repo_path} lately?",
                "Show me the history of {repo_path}.",
                "who committed what recently in {repo_path}",
            ],
            repo_path=v.repo,
        ),
        ask(
            [
                "Show me the last {max_count} commits in {repo_path}.",
                "The last {max_count} commits of {repo_path}, please.",
                "I only need the latest {max_count} entries of the history of {repo_path}.",
                "What were the {max_count} most recent changes committed to {repo_path}?",
            ],
            repo_path=v.repo,
            max_count=_commits,
        ),
        ask(
            [
                "What was committed to {repo_path} since {start_timestamp}?",
                "Anything new in {repo_path} after {start_timestamp}?",
            ],
            repo_path=v.repo,
            start_timestamp=_since,
        ),
    ],
    "git_create_branch": [
        ask(
            [
                "Create a branch {branch_name} in {repo_path}.",
                "Start a new branch called {branch_name} in {repo_path}.",
                "I want to work on {branch_name} in {repo_path}; make the branch.",
            ],
            repo_path=v.repo,
            branch_name=_new_branch,
        ),
        ask(
            [
                "Branch {branch_name} off {base_branch} in {repo_path}.",
                "In {repo_path}, create {branch_name} starting from {base_branch}.",
            ],
            repo_path=v.repo,
            branch_name=_new_branch,
            base_branch=_branch,
        ),
    ],
    "git_checkout": [
        ask(
            [
                "Switch {repo_path} to {branch_name}.",
                "check out {branch_name} in {repo_path}",
                "Move me onto the {branch_name} branch in {repo_path}.",
            ],
            repo_path=v.repo,
            branch_name=_branch,
        )
    ],
    "git_show": [
        ask(
            [
                "What's in commit {revision} of {repo_path}?",
                "Show me {revision} in {repo_path}.",
                "Open {revision} from {repo_path} for me.",
            ],
            repo_path=v.repo,
            revision=_revision,
        )
    ],
    "git_branch": [
        ask(
            ["List the {branch_type} branches of {repo_path}.", "Which {branch_type} branches does {repo_path} have?"],
            repo_path=v.repo,
            branch_type=_branch_kind,
        ),
        ask(
            ["Of the {branch_type} branches in {repo_path}, which already contain commit {contains}?"],
            repo_path=v.repo,
            branch_type=_branch_kind,
            contains=_sha,
        ),
    ],
}


def _text(template: str) -> Reply:
    """A reply whose result and answer are fixed sentences over the arguments and a commit id."""

    def reply(args: dict[str, Any], rng: random.Random) -> tuple[str, str]:
        asked = str(args.get("revision", "")).split(":")[0]
        sha = asked if asked in v.SHAS else rng.choice(v.SHAS)  # the commit asked for is the one shown
        fields = {**args, "sha": sha, "who": rng.choice(v.PEOPLE), "msg": rng.choice(v.COMMIT_MESSAGES)}
        for k, value in list(fields.items()):
            if isinstance(value, list):
                fields[k] = ", ".join(map(str, value))
        result, answer = template.split(" || ")
        return result.format(**fields).replace("\\n", "\n"), answer.format(**fields)

    return reply


REPLIES: dict[str, Reply] = {
    "git_status": _text(
        "Repository status:\\nOn branch main\\nChanges not staged for commit:\\n  modified:   src/app.py"
        " || In {repo_path} you are on main with one unstaged change: src/app.py is modified."
    ),
    "git_diff_unstaged": _text(
        "Unstaged changes:\\ndiff --git a/src/app.py b/src/app.py\\n-    retries = 1\\n+    retries = 3"
        " || One unstaged change: src/app.py now sets retries to 3 instead of 1."
    ),
    "git_diff_staged": _text(
        "Staged changes:\\ndiff --git a/README.md b/README.md\\n+## Deploying\\n+Run make deploy."
        ' || Staged: README.md gains a "Deploying" section.'
    ),
    "git_diff": _text(
        "Diff with {target}:\\ndiff --git a/Makefile b/Makefile\\n-test:\\n+test: lint"
        " || Against {target}, the only difference is in the Makefile: test now depends on lint."
    ),
    "git_commit": _text("Changes committed successfully with hash {sha} || Committed in {repo_path} as {sha}."),
    "git_add": _text("Files staged successfully || Staged {files}."),
    "git_reset": _text("All staged changes reset || Everything in {repo_path} is unstaged now."),
    "git_log": _text(
        "Commit history:\\nCommit: '{sha}'\\nAuthor: <git.Actor \"{who}\">\\nDate: 2026-03-02 10:14:00+00:00"
        "\\nMessage: '{msg}'\\n || The latest commit is {sha} by {who}: \"{msg}\"."
    ),
    "git_create_branch": _text("Created branch '{branch_name}' from 'main' || Branch {branch_name} is created."),
    "git_checkout": _text("Switched to branch '{branch_name}' || {repo_path} is on {branch_name} now."),
    "git_show": _text(
        "Commit: '{sha}'\\nAuthor: <git.Actor \"{who}\">\\nMessage: '{msg}'\\n || That is {sha} by {who}: \"{msg}\"."
    ),
    "git_branch": _text(
        "* main\\n  develop\\n  feature/login-form || There are three: main (checked out), develop and"
        " feature/login-form."
    ),
}
