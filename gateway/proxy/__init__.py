"""The call pipeline: decide -> record -> hold or forward -> record -> answer, one module per stage.

Modules (import from them; this package re-exports nothing): `pipeline` (``Proxy``: the
stages in order, and tools/list), `context` (``CallContext`` and the types at the
pipeline's seams), `visibility` (which tools an identity sees), `decision` (policy, then
rate limits), `record` (every audit write of a call, and failing closed), `hold` (calls
held for approval), `forward` (sending a committed call upstream and relaying what comes
back).
"""
