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

from pydantic import Field
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

    # approvals
    approval_ttl_s: float = Field(3600.0, description="Seconds before an undecided approval expires.")

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

    def describe(self) -> dict[str, Any]:
        """Settings safe to print (no secrets live here yet; keep it that way or redact)."""
        return self.model_dump(mode="json")
