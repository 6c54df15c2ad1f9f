import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from finetune.toolcall_parse import parse_hermes

CASES = [
    "plain answer, no call",
    '<tool_call>\n{"name": "get_time", "arguments": {"tz": "UTC"}}\n</tool_call>',
    'Sure.<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n'
    '<tool_call>\n{"name": "b", "arguments": {"x": 1}}\n</tool_call>',
    '<tool_call>\n{"name": "a", "arguments": {"s": "café"}}',  # unterminated: still parsed
    "<tool_call>\nnot json\n</tool_call>",
    '<tool_call>{"arguments": {}}</tool_call>',  # no name: not a call
]


def test_parses_hermes_calls_like_the_server() -> None:
    assert parse_hermes(CASES[0]).tools_called is False
    one = parse_hermes(CASES[1])
    assert one.tools_called and one.content is None
    assert [(c.name, c.arguments_obj()) for c in one.calls] == [("get_time", {"tz": "UTC"})]
    two = parse_hermes(CASES[2])
    assert two.content == "Sure." and [c.name for c in two.calls] == ["a", "b"]
    assert parse_hermes(CASES[3]).calls[0].arguments == '{"s": "café"}'
    for bad in CASES[4:]:
        got = parse_hermes(bad)
        assert got.tools_called is False and got.content == bad


_REPO_VLLM = Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python"


def _vllm_python() -> str | None:
    """The Python vLLM runs under: WARDEN_VLLM_PYTHON, the repo's .venv-vllm (`make setup`), or this one."""
    if os.environ.get("WARDEN_VLLM_PYTHON"):
        return os.environ["WARDEN_VLLM_PYTHON"]
    if _REPO_VLLM.exists():
        return str(_REPO_VLLM)
    return sys.executable if importlib.util.find_spec("vllm") else None


_VLLM_SCRIPT = """
import json, sys
from vllm.tool_parsers.hermes_tool_parser import Hermes2ProToolParser
p = Hermes2ProToolParser.__new__(Hermes2ProToolParser)
out = []
for text in json.load(sys.stdin):
    r = p.extract_tool_calls(text, None)
    out.append([r.tools_called, [[c.function.name, c.function.arguments] for c in r.tool_calls], r.content])
print(json.dumps(out))
"""


def test_mirror_agrees_with_vllm_hermes_parser() -> None:
    python = _vllm_python()
    assert python is not None, "no Python with vLLM: run `make setup` (.venv-vllm) or set WARDEN_VLLM_PYTHON"
    proc = subprocess.run(
        [python, "-c", _VLLM_SCRIPT], input=json.dumps(CASES), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = [[r.tools_called, [[c.name, c.arguments] for c in r.calls], r.content] for r in map(parse_hermes, CASES)]
    assert ours == theirs
