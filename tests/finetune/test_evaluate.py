"""The AST metric against hand-checked cases; eval through a real vLLM agrees with the server's parsing."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from finetune import bfcl, evaluate
from finetune.toolcall_parse import parse
from serving.process import VllmServer
from tests.serving.vllm_harness import ADAPTER_NAME, examples

TOOLS: dict[str, Any] = {
    "book_hotel": {
        "type": "function",
        "function": {
            "name": "book_hotel",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "nights": {"type": "integer"},
                    "budget": {"type": "number"},
                    "pets": {"type": "boolean"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "address": {"type": "object", "properties": {"zip": {"type": "string"}}},
                },
                "required": ["city", "nights"],
            },
        },
    }
}
WANT = [("book_hotel", {"city": "Oslo", "nights": 2, "budget": 120.0})]


def _call(args: str, name: str = "book_hotel") -> str:
    return f'<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>'


def test_ast_match_hand_checked_cases() -> None:
    ok = [
        _call('{"city": "Oslo", "nights": 2, "budget": 120.0}'),
        _call('{"budget": 120, "nights": 2, "city": " oslo"}'),  # int for number, key order, case and spaces
    ]
    wrong = [
        _call('{"city": "Oslo", "nights": 2.0, "budget": 120.0}'),  # float for an integer parameter
        _call('{"city": "Oslo", "nights": "2", "budget": 120.0}'),  # string for a number
        _call('{"city": "Oslo", "budget": 120.0}'),  # required argument missing
        _call('{"city": "Oslo", "nights": 2, "budget": 120.0, "pets": false}'),  # invented argument
        _call('{"city": "Oslo", "nights": 2, "budget": 120.0}', name="book_flight"),  # wrong tool
        "I booked it for you.",  # no call
        _call('{"city": "Oslo", "nights": 2, "budget": 120.0}') * 2,  # one call too many
    ]
    assert [evaluate.score(t, WANT, TOOLS) for t in ok] == [True, True]
    assert [evaluate.score(t, WANT, TOOLS) for t in wrong] == [False] * len(wrong)
    assert evaluate.value_matches(True, 1) is False and evaluate.value_matches(["a", "b"], ["b", "a"]) is False
    assert evaluate.value_matches(
        {"zip": "0150"}, {"zip": "0150"}, TOOLS["book_hotel"]["function"]["parameters"]["properties"]["address"]
    )


def test_irrelevance_is_correct_only_without_a_call() -> None:
    assert evaluate.score("No tool fits.", [], TOOLS)
    assert not evaluate.score(_call('{"city": "Oslo", "nights": 2}'), [], TOOLS)


def test_parallel_calls_match_in_any_order() -> None:
    want = [("book_hotel", {"city": "Oslo", "nights": 2}), ("book_hotel", {"city": "Lima", "nights": 3})]
    text = _call('{"city": "Lima", "nights": 3}') + "\n" + _call('{"city": "Oslo", "nights": 2}')
    assert evaluate.score(text, want, TOOLS)
    assert not evaluate.score(_call('{"city": "Lima", "nights": 3}'), want, TOOLS)


def test_bfcl_matcher_hand_checked_cases() -> None:
    answer = [{"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""]}}]
    assert bfcl.score(_call('{"base": 10, "height": 5}', "calculate_triangle_area"), answer)
    assert bfcl.score(_call('{"base": 10, "height": 5, "unit": "Units"}', "calculate_triangle_area"), answer)
    assert not bfcl.score(_call('{"base": 10}', "calculate_triangle_area"), answer)
    assert not bfcl.score(_call('{"base": 10, "height": 5, "color": "red"}', "calculate_triangle_area"), answer)
    assert not bfcl.score("The area is 25.", answer)
    assert bfcl.score("I cannot help with that.", [])


@pytest.mark.slow
def test_served_eval_matches_the_servers_own_tool_parsing(
    vllm: VllmServer, base_model: Path, gateway_time_tools: list[dict[str, Any]]
) -> None:
    """Eval through a real vLLM: the adapter beats the base, and every answer the eval scored parses to
    the same calls vLLM's own chat endpoint (template + hermes parser) returns for the same request."""
    from transformers import AutoTokenizer

    held_out = [{**ex, "messages": ex["messages"][:2]} for ex in examples(gateway_time_tools, 6, seed=7)]
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    url = f"{vllm.url}/v1"
    key = vllm.api_key
    adapter = evaluate.evaluate(evaluate.served_generator(url, ADAPTER_NAME, api_key=key), tokenizer, held_out, 64)
    base = evaluate.evaluate(evaluate.served_generator(url, base_model.name, api_key=key), tokenizer, held_out, 64)
    assert adapter["n_call"] == 6 and adapter["tool_call_accuracy"] >= 5 / 6, adapter["rows"]
    assert base["tool_call_accuracy"] < adapter["tool_call_accuracy"]
    for ex, row in zip(held_out[:3], adapter["rows"][:3], strict=True):
        body = {"model": ADAPTER_NAME, "messages": ex["messages"][:1], "tools": ex["tools"], "temperature": 0}
        headers = {"Authorization": f"Bearer {key}"}
        reply = httpx.post(f"{url}/chat/completions", json={**body, "max_tokens": 64}, headers=headers, timeout=120)
        answer = reply.json()
        served = [
            (c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in answer["choices"][0]["message"].get("tool_calls") or []
        ]
        ours = [(c.name, c.arguments_obj()) for c in parse(row["output"]).calls]
        assert ours == served


@pytest.mark.slow
def test_served_eval_names_a_model_the_server_does_not_have(vllm: VllmServer) -> None:
    generate = evaluate.served_generator(f"{vllm.url}/v1", "no-such-adapter", api_key=vllm.api_key)
    with pytest.raises(evaluate.EvalError, match=r"no-such-adapter.*404"):
        generate(["hello"], 4)


def test_served_generation_keeps_special_tokens_as_the_servers_hermes_parser_does() -> None:
    """Serving's hermes parser sets skip_special_tokens=False (vLLM adjust_request); /completions must ask the
    same, or a tokenizer that marks <tool_call> special loses the tags and every call reads as none."""
    body = evaluate.completion_body("m", "<|im_start|>user\nhi<|im_end|>\n", 16)
    assert body["skip_special_tokens"] is False and body["add_special_tokens"] is False
    assert (body["model"], body["max_tokens"], body["temperature"]) == ("m", 16, 0)
