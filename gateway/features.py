"""The MCP server features besides tools (resources, prompts, completions) at the gateway's MCP endpoint.

Owns: translating ``resources/list``, ``resources/templates/list``, ``resources/read``,
``resources/subscribe``/``unsubscribe``, ``prompts/list``, ``prompts/get`` and
``completion/complete`` into ``gateway.resources`` / ``gateway.prompts`` /
``gateway.subscriptions`` calls and back (``Front.handlers()`` goes to the SDK's Server in
``mcp_front.build_mcp_server``; a served handler is also what makes the SDK advertise the
capability: ``resources``, ``prompts``, ``completions``).

Must never: answer with internal text: a refusal is an ``MCPError`` whose text comes from
``gateway.answers``; anything unexpected fails closed with a plain error.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from gateway import answers
from gateway.mcp_front import REQUEST_REF_META_KEY, _caller, _client_features, _identity
from gateway.prompts import Prompts
from gateway.resources import Resources
from gateway.subscriptions import Subscriptions

logger = logging.getLogger(__name__)


def _ref(ctx: Any, params: Any) -> str | None:
    ref = (getattr(params, "meta", None) or {}).get(REQUEST_REF_META_KEY)
    return str(ref) if ref is not None else None


class Front:
    """The resource, prompt and completion handlers: the edge of ``Resources``, ``Prompts``, ``Subscriptions``."""

    def __init__(self, resources: Resources, prompts: Prompts, subscriptions: Subscriptions) -> None:
        self.resources = resources
        self.prompts = prompts
        self.subscriptions = subscriptions

    def handlers(self) -> dict[str, Any]:
        return {
            "on_list_resources": self.list_resources,
            "on_list_resource_templates": self.list_templates,
            "on_read_resource": self.read,
            "on_subscribe_resource": self.subscribe,
            "on_unsubscribe_resource": self.unsubscribe,
            "on_list_prompts": self.list_prompts,
            "on_get_prompt": self.get_prompt,
            "on_completion": self.complete,
        }

    async def list_resources(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        name = _identity(ctx)
        self.subscriptions.listed(getattr(ctx, "session", None), name)
        return await _listing(self.resources.list_resources(name, params.cursor if params else None))

    async def list_templates(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        name = _identity(ctx)
        self.subscriptions.listed(getattr(ctx, "session", None), name)
        return await _listing(self.resources.list_templates(name, params.cursor if params else None))

    async def list_prompts(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        name = _identity(ctx)
        self.subscriptions.listed(getattr(ctx, "session", None), name)
        return await _listing(self.prompts.list_prompts(name, params.cursor if params else None))

    async def read(
        self, ctx: Any, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult | types.InputRequiredResult:
        return await _guarded(
            self.resources.read(
                _caller(ctx), params.uri, request_ref=_ref(ctx, params), client=_client_features(ctx, params)
            )
        )

    async def get_prompt(
        self, ctx: Any, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult | types.InputRequiredResult:
        return await _guarded(
            self.prompts.get(
                _caller(ctx),
                params.name,
                params.arguments or {},
                request_ref=_ref(ctx, params),
                client=_client_features(ctx, params),
            )
        )

    async def complete(self, ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
        return await _guarded(self.prompts.complete(_caller(ctx), params))

    async def subscribe(self, ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        await _guarded(self.subscriptions.subscribe(_caller(ctx), ctx.session, params.uri))
        return types.EmptyResult()

    async def unsubscribe(self, ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        await _guarded(self.subscriptions.unsubscribe(_caller(ctx), ctx.session, params.uri))
        return types.EmptyResult()

    async def listen(
        self,
        ctx: Any,
        params: types.SubscriptionsListenRequestParams,
        serve: Callable[[types.SubscriptionsListenRequestParams], Awaitable[types.SubscriptionsListenResult]],
    ) -> types.SubscriptionsListenResult:
        return await self.subscriptions.listen(_caller(ctx), params, serve)


async def _listing(listing: Any) -> Any:
    """A list answer; an internal failure (audit, database) is a plain error, never its text."""
    try:
        return await listing
    except MCPError:
        raise
    except Exception:  # boundary: the client gets a plain error, never the internal text
        logger.exception("a resource or prompt listing failed")
        raise MCPError(types.INTERNAL_ERROR, "the gateway could not list that right now; try again") from None


async def _guarded(request: Any) -> Any:
    """A read, get, completion or (un)subscribe; an unexpected failure fails closed, without its text."""
    try:
        return await request
    except MCPError:
        raise
    except Exception:  # boundary: an unexpected failure never reaches the client as exception text
        logger.exception("a resource, prompt or completion request failed inside the gateway")
        raise MCPError(
            types.INTERNAL_ERROR, answers.fail_closed("the gateway could not complete the request")
        ) from None
