"""gateway/risk/classify.py (and evidence.py): classes with named evidence, on the five real servers' tools.

The snapshot (catalogs.json) is the servers' real tools/list; test_catalog.py checks it still
matches the live servers. Hand-written definitions below probe the rules the real servers do
not exercise: annotations contradicted by names and parameters, and tools nothing speaks for.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest

from gateway.risk import RiskClass, classify, classify_json, risk_change, risk_label
from gateway.risk.suggest import CatalogTool

R = RiskClass


def by_name(catalog: list[CatalogTool]) -> dict[str, types.Tool]:
    return {e.public_name: e.tool for e in catalog}


def test_every_tool_of_the_five_servers_gets_classes_with_reasons(snapshot: list[CatalogTool]) -> None:
    assert {e.server for e in snapshot} == {"time", "git", "everything", "filesystem", "memory"}
    assert len(snapshot) >= 45
    for entry in snapshot:
        risk = classify(entry.tool)
        assert risk.classes, entry.public_name
        for cls in risk.classes:
            assert risk.reasons(cls), f"{entry.public_name}: class {cls} has no named evidence"


EXPECTED = {
    # destructive by the server's own annotations, and by name where it says so
    "git__git_reset": {R.DESTRUCTIVE, R.WRITES},
    "filesystem__write_file": {R.DESTRUCTIVE, R.WRITES},
    "filesystem__edit_file": {R.DESTRUCTIVE, R.WRITES},
    "filesystem__move_file": {R.DESTRUCTIVE, R.WRITES},
    "memory__delete_entities": {R.DESTRUCTIVE, R.WRITES},
    "memory__delete_relations": {R.DESTRUCTIVE, R.WRITES},
    "memory__delete_observations": {R.DESTRUCTIVE, R.WRITES},
    # writes, not destructive
    "git__git_commit": {R.WRITES},
    "git__git_add": {R.WRITES},
    "git__git_checkout": {R.WRITES},
    "git__git_create_branch": {R.WRITES},
    "filesystem__create_directory": {R.WRITES},
    "memory__create_entities": {R.WRITES},
    # read-only
    "time__get_current_time": {R.READ_ONLY},
    "time__convert_time": {R.READ_ONLY},
    "git__git_status": {R.READ_ONLY},
    "git__git_log": {R.READ_ONLY},
    "git__git_branch": {R.READ_ONLY},
    "filesystem__read_text_file": {R.READ_ONLY},
    "filesystem__list_directory": {R.READ_ONLY},
    "memory__read_graph": {R.READ_ONLY},
    # read-only per its annotations, but it hands out the environment: secrets
    "everything__get-env": {R.READ_ONLY, R.HANDLES_SECRETS},
    # fetches a URL it is given (format: uri): open-world, as its annotation also says
    "everything__gzip-file-as-resource": {R.WRITES, R.OPEN_WORLD},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_tool_classes(snapshot: list[CatalogTool], name: str) -> None:
    assert set(classify(by_name(snapshot)[name]).classes) == EXPECTED[name]


def test_destructive_evidence_names_the_annotation_and_the_verb(snapshot: list[CatalogTool]) -> None:
    reset = classify(by_name(snapshot)["git__git_reset"])
    assert reset.level == R.DESTRUCTIVE
    assert reset.reasons(R.DESTRUCTIVE) == [
        "annotation: destructiveHint=true -> destructive",
        "name: verb 'reset' -> destructive",
    ]
    delete = classify(by_name(snapshot)["memory__delete_entities"])
    assert "name: verb 'delete' -> destructive" in delete.reasons(R.DESTRUCTIVE)
    assert "description: says 'delete' -> destructive" in delete.reasons(R.DESTRUCTIVE)


def test_secrets_evidence_for_get_env(snapshot: list[CatalogTool]) -> None:
    risk = classify(by_name(snapshot)["everything__get-env"])
    assert risk.level == R.HANDLES_SECRETS
    assert risk.reasons(R.HANDLES_SECRETS) == [
        "name: word 'env' -> handles-secrets",
        "description: says 'environment variables' -> handles-secrets",
    ]
    assert risk.conflicts == ()  # reading secrets is still reading: no annotation is contradicted


def test_real_servers_annotations_are_not_contradicted(snapshot: list[CatalogTool]) -> None:
    contradicted = {e.public_name: classify(e.tool).conflicts for e in snapshot if classify(e.tool).conflicts}
    assert contradicted == {}


def test_classification_is_deterministic(snapshot: list[CatalogTool]) -> None:
    first = [classify(e.tool) for e in snapshot]
    again = [classify(types.Tool.model_validate(e.tool.model_dump(by_alias=True))) for e in snapshot]
    assert first == again


def tool(name: str, annotations: dict[str, Any] | None = None, description: str = "", **props: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": props},
    }
    if annotations is not None:
        definition["annotations"] = annotations
    return definition


def test_read_only_claim_against_a_delete_verb_is_a_conflict_and_destructive_wins() -> None:
    risk = classify_json(tool("delete_rows", {"readOnlyHint": True}))
    assert risk.level == R.DESTRUCTIVE
    assert not risk.has(R.READ_ONLY)
    assert risk.conflicts == ("annotation readOnlyHint=true is contradicted by name verb 'delete' (destructive)",)


def test_read_only_claim_against_a_command_parameter_is_a_conflict() -> None:
    risk = classify_json(tool("lookup", {"readOnlyHint": True}, command={"type": "string"}))
    assert risk.level == R.EXECUTES_CODE
    assert risk.held
    assert risk.conflicts == (
        "annotation readOnlyHint=true is contradicted by schema parameter 'command' takes code or a command "
        "(executes-code)",
    )


def test_non_destructive_claim_against_a_drop_verb_is_a_conflict() -> None:
    risk = classify_json(tool("drop_table", {"readOnlyHint": False, "destructiveHint": False}))
    assert risk.has(R.DESTRUCTIVE)
    assert risk.conflicts == ("annotation destructiveHint=false is contradicted by name verb 'drop' (destructive)",)


def test_closed_world_claim_against_a_url_parameter_is_a_conflict() -> None:
    risk = classify_json(tool("get_page", {"readOnlyHint": True, "openWorldHint": False}, url={"type": "string"}))
    assert set(risk.classes) == {R.READ_ONLY, R.OPEN_WORLD}
    assert risk.conflicts == (
        "annotation openWorldHint=false is contradicted by schema parameter 'url' takes a URL or host (open-world)",
    )


def test_annotations_that_contradict_each_other_are_reported() -> None:
    risk = classify_json(tool("get_x", {"readOnlyHint": True, "destructiveHint": True}))
    assert risk.level == R.DESTRUCTIVE
    assert "annotations disagree with each other: readOnlyHint=true and destructiveHint=true" in risk.conflicts


def test_a_tool_nothing_speaks_for_is_assumed_to_write() -> None:
    risk = classify_json(tool("frobnicate"))
    assert risk.classes == (R.WRITES,)
    assert risk.reasons(R.WRITES) == ["default: nothing says it only reads: assumed to write -> writes"]


def test_not_read_only_without_destructive_hint_is_destructive_by_the_mcp_default() -> None:
    risk = classify_json(tool("frobnicate", {"readOnlyHint": False}))
    assert risk.reasons(R.DESTRUCTIVE) == ["annotation: destructiveHint unset (MCP default true) -> destructive"]


def test_code_and_secret_parameters_nested_and_camel_case() -> None:
    risk = classify_json(
        tool(
            "runJob",
            job={"type": "object", "properties": {"shellScript": {"type": "string"}}},
            auth={"type": "object", "properties": {"apiKey": {"type": "string"}}},
        )
    )
    assert risk.has(R.EXECUTES_CODE) and risk.has(R.HANDLES_SECRETS)
    assert "name: verb 'run' -> executes-code" in risk.reasons(R.EXECUTES_CODE)
    assert "schema: parameter 'job.shellScript' takes code or a command -> executes-code" in risk.reasons(
        R.EXECUTES_CODE
    )
    assert "schema: parameter 'auth.apiKey' takes a credential -> handles-secrets" in risk.reasons(R.HANDLES_SECRETS)


def test_words_inside_other_words_do_not_count() -> None:
    """'running' is not 'run'; 'address' is not 'add'; 'settings' is not 'set'."""
    assert classify_json(tool("trigger-long-running-operation", {"readOnlyHint": True})).classes == (R.READ_ONLY,)
    assert classify_json(tool("get_address_settings")).classes == (R.READ_ONLY,)


def test_risk_label_is_memoized_per_definition_object(snapshot: list[CatalogTool]) -> None:
    reset = by_name(snapshot)["git__git_reset"]
    assert risk_label(reset) == "destructive,writes"
    assert risk_label(reset) == "destructive,writes"
    copy = reset.model_copy(update={"annotations": None, "name": "get_status"})
    assert risk_label(copy) != risk_label(reset)  # another object: classified afresh
    assert risk_label(None) == ""


def test_a_definition_change_that_moves_the_risk_is_described(snapshot: list[CatalogTool]) -> None:
    status = by_name(snapshot)["git__git_status"]
    rewritten = status.model_copy(
        update={
            "description": "Shows the working tree status, then runs a shell command to clean it",
            "annotations": status.annotations.model_copy(update={"read_only_hint": False})
            if status.annotations
            else None,
        }
    )
    assert risk_change(status, rewritten) == (
        "risk of git_status changed: read-only -> executes-code,writes; gained executes-code, writes "
        "(annotation: readOnlyHint=false -> writes; description: says 'runs a shell command' -> executes-code); "
        "lost read-only"
    )
    assert risk_change(status, status.model_copy()) is None
