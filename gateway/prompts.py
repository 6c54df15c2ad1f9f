"""Prompts and completions through the gateway: prompts/list, prompts/get, completion/complete.

Owns: the prompts one identity sees (every ready upstream's prompts under public names,
namespaced like tools: ``server__name``, unchanged for an upstream mounted without a
prefix), filtered by its prompt grants and paged; a prompt get (decide on the public name
and the arguments, hold for approval, forward, answer with the messages' resource URIs made
public); and a completion of a prompt's or a resource template's argument, for a reference
the identity may see, with values that would name a resource it may not read dropped.
Gets and completions are audited like tool calls (method ``prompts/get`` /
``completion/complete``, ``tool`` = the upstream prompt name or template URI), with the size
and sha256 of what came back. A get carries the listed prompt's ``prompt_hash`` as its
``definition_hash``: an approval binds the definition it was requested for, as for tools, and
a get held for approval is refused on release (``prompt-changed``) if the upstream has
listed the prompt differently since.

A prompt or reference the identity cannot see, whether it exists or not, and a get the
upstream refuses, get one and the same answer (``answers.unknown_prompt`` /
``answers.unknown_reference``, code -32602).

Must never: tell a caller anything about a prompt or template outside its grants.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from gateway import answers, uris
from gateway.forwarding import Refused, mark_unknown, new_id, run, sent
from gateway.proxy.context import Sent
from gateway.proxy.pipeline import Proxy
from gateway.resources import Resources, paged
from gateway.types import Caller, ClientFeatures, Identity, ToolCall, canonical_json
from gateway.upstream.connection import Upstream
from gateway.upstream.pool import UpstreamPool


def public_prompt(pool: UpstreamPool, upstream: Upstream, name: str) -> str:
    """The public name of an upstream's prompt: named like its tools (``UpstreamPool.public_name``)."""
    return pool.public_name(upstream.name, name)


def prompt_hash(prompt: types.Prompt) -> str:
    """sha256 of what a prompt tells a model and its approver: name, title, description, arguments."""
    definition = {
        "name": prompt.name,
        "title": prompt.title,
        "description": prompt.description,
        "arguments": [a.model_dump(mode="json", exclude_none=True) for a in prompt.arguments or []],
    }
    return hashlib.sha256(canonical_json(definition).encode()).hexdigest()


def _listed_hash(upstream: Upstream, name: str) -> str:
    """``prompt_hash`` of the prompt ``upstream`` lists as ``name`` now; "" when it lists none."""
    listed = upstream.offerings.prompt(name)
    return prompt_hash(listed) if listed is not None else ""


def resolve_prompt(pool: UpstreamPool, public: str) -> tuple[Upstream, str] | None:
    """The upstream and its own name of a public prompt name; None when no upstream lists it."""
    server, sep, name = public.partition(pool.separator)
    upstream = pool.upstreams.get(server) if sep else None
    if upstream is not None and uris.prefixed(upstream) and upstream.offerings.prompt(name) is not None:
        return upstream, name
    owner = next(
        (u for u in pool.upstreams.values() if not uris.prefixed(u) and u.offerings.prompt(public) is not None), None
    )
    return (owner, public) if owner is not None else None


@dataclass(frozen=True, slots=True)
class Reference:
    """A completion's reference, resolved: public and upstream name (prompt) or template URI."""

    upstream: Upstream
    public: str
    own: str
    ref_type: str


class Prompts:
    def __init__(self, proxy: Proxy, resources: Resources, *, page_size: int = 100) -> None:
        self.proxy = proxy
        self.resources = resources
        self.pool = proxy.pool
        self.page_size = page_size

    def granted(self, identity: Identity, public: str) -> bool:
        return self.proxy.policies.current.is_granted(identity, public, "prompt")

    def visible(self, identity: Identity) -> list[types.Prompt]:
        listed = [
            prompt.model_copy(update={"name": public_prompt(self.pool, upstream, prompt.name)})
            for upstream in self.pool.upstreams.values()
            if upstream.state == "ready"
            for prompt in upstream.offerings.prompts
        ]
        return [prompt for prompt in listed if self.granted(identity, prompt.name)]

    async def list_prompts(self, identity_name: str, cursor: str | None) -> types.ListPromptsResult:
        items, next_cursor = paged(self.visible(self.resources.identity(identity_name)), cursor, self.page_size)
        await self.resources.record_list("prompts/list", identity_name, len(items))
        return types.ListPromptsResult(prompts=items, next_cursor=next_cursor)

    # ---- prompts/get ---------------------------------------------------------------------

    async def get(
        self,
        caller: Caller,
        public: str,
        arguments: dict[str, str],
        *,
        request_ref: str | None = None,
        client: ClientFeatures = ClientFeatures(),
    ) -> types.GetPromptResult | types.InputRequiredResult:
        unknown = Refused(types.INVALID_PARAMS, answers.unknown_prompt(public))
        resolved = resolve_prompt(self.pool, public)
        server, own = (resolved[0].name, resolved[1]) if resolved is not None else ("", public)
        digest = _listed_hash(resolved[0], own) if resolved is not None else ""
        call = ToolCall(public, server, own, dict(arguments), new_id(), digest, kind="prompt")

        async def send(timeout_s: float) -> Sent:
            assert resolved is not None
            return await sent(
                lambda: resolved[0].send(lambda c: c.get_prompt(own, dict(arguments)), timeout_s),
                server=server,
                contents=lambda result: result.messages,
                refused=unknown,
            )

        ctx = await self.proxy.context(caller, call, send, method="prompts/get", request_ref=request_ref, client=client)
        if resolved is not None:  # an approval covers the prompt as listed when it was held, not a rewording
            owner = resolved[0]
            ctx.definition = lambda: _listed_hash(owner, own)
        if resolved is None:  # audited as denied, answered like any prompt the identity cannot see
            mark_unknown(ctx, "unknown-prompt", "no such prompt")
        result = await run(self.proxy, ctx, unknown)
        if isinstance(result, types.GetPromptResult) and resolved is not None:
            return uris.rewrite(resolved[0], result)
        return result

    # ---- completion/complete -------------------------------------------------------------

    def reference(self, ref: types.PromptReference | types.ResourceTemplateReference) -> Reference | None:
        if isinstance(ref, types.PromptReference):
            resolved = resolve_prompt(self.pool, ref.name)
            return Reference(resolved[0], ref.name, resolved[1], "ref/prompt") if resolved else None
        target = uris.resolve(self.pool, ref.uri)
        if target is None:
            return None
        upstream, own = target
        if not any(t.uri_template == own for t in upstream.offerings.templates):
            return None
        return Reference(upstream, ref.uri, own, "ref/resource")

    async def complete(self, caller: Caller, params: types.CompleteRequestParams) -> types.CompleteResult:
        ref_name = params.ref.name if isinstance(params.ref, types.PromptReference) else params.ref.uri
        unknown = Refused(types.INVALID_PARAMS, answers.unknown_reference(ref_name))
        ref = self.reference(params.ref)
        context = dict(params.context.arguments or {}) if params.context is not None else {}
        arguments: dict[str, Any] = {
            "ref_type": params.ref.type,
            "argument": {"name": params.argument.name, "value": params.argument.value},
            **({"context": {"arguments": context}} if context else {}),
        }
        server, own = (ref.upstream.name, ref.own) if ref is not None else ("", ref_name)
        call = ToolCall(ref_name, server, own, arguments, new_id(), kind="completion")

        async def send(timeout_s: float) -> Sent:
            assert ref is not None
            upstream_ref: types.PromptReference | types.ResourceTemplateReference = (
                types.PromptReference(name=own)
                if ref.ref_type == "ref/prompt"
                else types.ResourceTemplateReference(uri=own)
            )
            argument = {"name": params.argument.name, "value": params.argument.value}
            sent_ = await sent(
                lambda: ref.upstream.send(lambda c: c.complete(upstream_ref, argument, context or None), timeout_s),
                server=server,
                contents=lambda result: result.completion,
                refused=unknown,
            )
            return self._filtered(caller, ref, params.argument.name, context, sent_)

        ctx = await self.proxy.context(caller, call, send, method="completion/complete")
        if ref is None:
            mark_unknown(ctx, "unknown-reference", "no such prompt or resource template")
        result = await run(self.proxy, ctx, unknown)
        return result

    def _filtered(self, caller: Caller, ref: Reference, name: str, context: dict[str, str], done: Sent) -> Sent:
        """Drop completion values that would expand the template into a URI the identity may not read."""
        result, outcome, fields = done
        if ref.ref_type != "ref/resource" or not isinstance(result, types.CompleteResult):
            return done
        identity = self.resources.identity(caller.name)
        kept = []
        for value in result.completion.values:
            uri = uris.expand(ref.own, {**context, name: value})
            if uri is None or self.resources.granted(identity, ref.upstream, uri):
                kept.append(value)
        if len(kept) == len(result.completion.values):
            return done
        completion = types.Completion(values=kept, total=len(kept), has_more=result.completion.has_more)
        return types.CompleteResult(completion=completion), outcome, fields
