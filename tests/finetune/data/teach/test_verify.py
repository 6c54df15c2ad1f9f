"""finetune.data.teach.verify: what a teacher's proposal must pass, on the real servers' schemas."""

from __future__ import annotations

import json

from finetune.data import natural
from finetune.data.teach import verify

CATS = natural.catalogs()


def _schema(server: str, tool: str) -> dict:
    return CATS.tool(server, tool)["function"]["parameters"]


def test_a_proposal_must_be_a_request_and_an_arguments_object() -> None:
    assert verify.parse_proposal('{"request": "Time in Oslo?", "arguments": {"timezone": "Europe/Oslo"}}') == (
        "Time in Oslo?",
        {"timezone": "Europe/Oslo"},
    )
    assert "not JSON" in str(verify.parse_proposal('{"request": "x", '))
    assert verify.parse_proposal('{"request": "", "arguments": {}}') == "no non-empty 'request' string"
    assert verify.parse_proposal('{"request": "x", "arguments": [1]}') == "'arguments' is not an object"


def test_schema_problems_follow_the_real_schemas_including_defs() -> None:
    time = _schema("time", "get_current_time")
    assert verify.schema_problems(time, {"timezone": "Asia/Tokyo"}) == []
    assert verify.schema_problems(time, {}) == ["(arguments): 'timezone' is a required property"]
    assert verify.schema_problems(time, {"timezone": 9})
    issue = _schema("tracker", "create_issue")  # $defs + $ref + anyOf null
    assert verify.schema_problems(issue, {"project": "WEB", "title": "x", "priority": "high"}) == []
    assert verify.schema_problems(issue, {"project": "WEB", "title": "x", "priority": "whenever"})
    assert verify.schema_problems(issue, {"project": "WEB", "title": "x", "labels": [{"color": "red"}]})
    edit = _schema("filesystem", "edit_file")  # array of objects
    assert verify.schema_problems(edit, {"path": "/a", "edits": [{"oldText": "a"}]})


def test_a_request_that_names_a_parameter_is_caught() -> None:
    args = {"repo_path": "/srv/git/api", "max_count": 5}
    assert verify.named_parameters(args, "Show me the last five commits in /srv/git/api.") == []
    assert verify.named_parameters(args, "git log with repo_path /srv/git/api, max count 5") == [
        "repo_path",
        "max_count",
    ]
    assert verify.named_parameters({"timezone": "UTC"}, "timezone: UTC please") == ["timezone"]
    assert verify.named_parameters({"timezone": "UTC"}, "What time zone is UTC in?") == []
    nested = {"entities": [{"name": "Dana", "entityType": "person", "observations": []}]}
    assert verify.named_parameters(nested, "Remember Dana, entity type person") == ["entityType"]


def test_a_request_must_read_like_a_person_and_not_name_the_tool() -> None:
    assert verify.request_problems("What time is it in Oslo right now?", "get_current_time") == []
    assert verify.request_problems("GET", "get_current_time") == ["the request has fewer than 3 words"]
    assert verify.request_problems("please run get_current_time for Oslo", "get_current_time") == [
        "the request names the tool 'get_current_time'"
    ]
    assert verify.request_problems("Echo this back: hello there", "echo") == []  # a word, not an identifier


def test_defaults_that_are_repeated_are_caught() -> None:
    log = _schema("git", "git_log")
    assert verify.repeated_defaults(log, {"repo_path": "/r", "max_count": 10}) == ["max_count"]
    assert verify.repeated_defaults(log, {"repo_path": "/r", "max_count": 5}) == []
    assert verify.repeated_defaults(_schema("tracker", "create_issue"), {"priority": "medium"}) == ["priority"]


def test_final_answers_must_be_short_text_grounded_in_the_result() -> None:
    result = json.dumps({"timezone": "Asia/Tokyo", "datetime": "2026-03-01T09:00:00+09:00"}, indent=2)
    assert verify.answer_problems("It's 09:00 in Tokyo.", result) == []
    assert "answer contains tool markup" in verify.answer_problems(f"<tool_response>{result}</tool_response>", result)
    assert "answer repeats the raw result" in verify.answer_problems(f"Here: {result}", result)
    assert verify.answer_problems("", result) == ["empty answer"]
    assert verify.parse_confirmation('{"implies": true}') is True
    assert verify.parse_confirmation('{"implies": false}') is False
    assert isinstance(verify.parse_confirmation("yes"), str)
