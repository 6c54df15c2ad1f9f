"""`/admin/adapters`: list registered adapters, promote one into the running vLLM.
`/admin/tools`: the live catalog with each tool's risk. `/admin/policy/suggest`: the starter
policy for it (`gateway.risk`), reviewed (GET) or written into the policy directory (POST).

HTTP glue only. The caller authenticates with its API key (`Authorization: Bearer`) and must
hold the `admin` role in the policy files. Promotion asks the registry's rule
(`gateway.adapters.registry.promotion_problem`: same base model as the server, eval score not below
the base model's), then loads the adapter through vLLM's runtime endpoint on loopback (behind the API key only
Warden holds: ``Settings.vllm_key()``; never exposed), then records the promotion. Every
attempt, refused or not, is one audit event (method `admin/adapters/promote`).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import anyio
import httpx
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from gateway.adapters.registry import AdapterRegistry, promotion_problem
from gateway.deps import GatewayDep, json_body, require_role
from gateway.models import AdapterPublic
from gateway.risk.catalog import from_pool
from gateway.risk.review import SUGGESTION_NAME, Review, propose, write
from gateway.risk.view import tool_view
from gateway.state import GatewayState
from gateway.types import AuditEvent, Effect, Outcome
from serving.client import load_adapter, served_models
from serving.errors import ServeError
from serving.ports import LOOPBACK

ADMIN_ROLE = "admin"

router = APIRouter(prefix="/admin", tags=["admin"])


AdminDep = Annotated[str, Depends(require_role(ADMIN_ROLE))]
"""An identity with the ``admin`` role: only admins list and promote adapters."""


@router.get("/adapters")
async def list_adapters(gateway: GatewayDep, _admin: AdminDep) -> list[AdapterPublic]:
    return await anyio.to_thread.run_sync(AdapterRegistry(gateway.engine).list)


@router.post("/adapters/{name}/promote")
async def promote(name: str, gateway: GatewayDep, admin: AdminDep) -> dict[str, Any]:
    """Load adapter `name` into the running vLLM, if the promotion rule allows it."""
    started = time.perf_counter()
    registry = AdapterRegistry(gateway.engine)
    adapter = await anyio.to_thread.run_sync(registry.get, name)
    if adapter is None:
        raise HTTPException(404, f"no adapter named {name!r}; register it with `warden adapters register`")
    url = f"http://{LOOPBACK}:{gateway.settings.vllm_port}"
    vllm_key = gateway.settings.vllm_key()

    async def audit(effect: Effect, outcome: Outcome, reason: str) -> None:
        await gateway.audit.record(
            AuditEvent(
                call_id=uuid.uuid4().hex,
                phase="decision",
                method="admin/adapters/promote",
                identity=admin,
                server="vllm",
                tool=name,
                arguments={"path": adapter.path, "base_model": adapter.base_model},
                effect=effect,
                reason=reason,
                outcome=outcome,
                latency_total_ms=(time.perf_counter() - started) * 1000,
            )
        )

    problem = promotion_problem(adapter, None)  # the scores: no server needed to refuse
    if problem is not None:
        await audit("deny", "denied", problem)
        raise HTTPException(409, problem)
    async with httpx.AsyncClient(timeout=gateway.settings.vllm_admin_timeout_s) as client:
        try:
            models = await served_models(client, url, vllm_key)
        except ServeError as exc:
            await audit("deny", "upstream_error", str(exc))
            raise HTTPException(502, str(exc)) from exc
        except httpx.HTTPError as exc:
            await audit("deny", "upstream_error", f"vLLM unreachable: {exc}")
            raise HTTPException(
                502, f"no vLLM answering at {url} ({type(exc).__name__}); start it with `warden serve`"
            ) from exc
        base = next((m for m in models if m.parent is None), None)
        problem = promotion_problem(adapter, base.root if base else None)  # the base model
        if problem is not None:
            await audit("deny", "denied", problem)
            raise HTTPException(409, problem)
        already = any(m.id == name for m in models)
        if not already:
            try:
                await load_adapter(client, url, name, Path(adapter.path), vllm_key)
            except (ServeError, httpx.HTTPError) as exc:
                await audit("deny", "upstream_error", str(exc))
                raise HTTPException(502, str(exc)) from exc
    promoted = await anyio.to_thread.run_sync(registry.mark_promoted, name, admin)
    await audit("allow", "ok", "already loaded" if already else "loaded into vLLM")
    return {"adapter": promoted.model_dump(mode="json"), "loaded": not already, "server": url}


# ---- tools and their risk; the suggested starter policy (gateway.risk) -------------------------


@router.get("/tools")
async def list_tools(gateway: GatewayDep, _admin: AdminDep) -> list[dict[str, Any]]:
    """Every tool the upstreams publish now, with its risk classes and evidence (operators only, not agents)."""
    return [tool_view(entry.public_name, entry.upstream.name, entry.tool) for entry in gateway.pool.catalog()]


class SuggestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("suggested", pattern=SUGGESTION_NAME.pattern, description="File stem under the policy dir.")
    role_prefix: str = Field("", pattern=r"^[a-z0-9-]{0,32}$", description="Prefix of the suggested role names.")
    write: bool = Field(False, description="Write the files (else only review them).")
    force: bool = Field(False, description="Overwrite files of the same name.")
    allow_widening: bool = Field(False, description="Write even where existing identities would be granted more.")


async def suggest_body(request: Request, _admin: AdminDep) -> SuggestRequest:
    """The body, read only once the caller is an authenticated admin (see gateway.deps.json_body)."""
    return await json_body(request, SuggestRequest)


SuggestBodyDep = Annotated[SuggestRequest, Depends(suggest_body)]


@router.get("/policy/suggest")
async def review_suggestion(
    gateway: GatewayDep,
    _admin: AdminDep,
    name: Annotated[str, Query(pattern=SUGGESTION_NAME.pattern)] = "suggested",
    role_prefix: Annotated[str, Query(pattern=r"^[a-z0-9-]{0,32}$")] = "",
) -> dict[str, Any]:
    """The starter policy for the live catalog, checked against the policy directory; writes nothing."""
    return (await _propose(gateway, name, role_prefix)).to_json()


@router.post("/policy/suggest")
async def adopt_suggestion(request: SuggestBodyDep, gateway: GatewayDep, admin: AdminDep) -> dict[str, Any]:
    """Review the suggestion and, with ``write``, write it (refused: 409, nothing written). Audited."""
    review = await _propose(gateway, request.name, request.role_prefix)
    if not request.write:
        return review.to_json()
    try:
        written = await anyio.to_thread.run_sync(lambda: write(review, request.force, request.allow_widening))
    except ValueError as exc:
        await _audit_suggestion(gateway, admin, request.name, "deny", str(exc))
        raise HTTPException(409, str(exc)) from None
    await _audit_suggestion(gateway, admin, request.name, "allow", f"wrote {', '.join(map(str, written))}")
    return {**review.to_json(), "written": [str(p) for p in written]}


async def _propose(gateway: GatewayState, name: str, role_prefix: str) -> Review:
    catalog = from_pool(gateway.pool)
    if not catalog:
        raise HTTPException(409, "no upstream lists any tools now: nothing to suggest")
    settings = gateway.settings
    return await anyio.to_thread.run_sync(
        propose, settings.policy_dir, name, catalog, role_prefix, settings.tool_separator
    )


async def _audit_suggestion(gateway: GatewayState, admin: str, name: str, effect: Effect, reason: str) -> None:
    await gateway.audit.record(
        AuditEvent(
            call_id=uuid.uuid4().hex,
            phase="decision",
            method="admin/policy/suggest",
            identity=admin,
            tool=name,
            effect=effect,
            reason=reason,
            outcome="ok" if effect == "allow" else "denied",
        )
    )
