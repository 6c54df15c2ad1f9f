"""The audit log: one writer, hash chain, signed checkpoints, verification, queries, pruning.

- ``writer``: ``AuditWriter``, the ONLY code that inserts audit events (group commit, hash chain).
- ``chain``: the chain's hash function and the fields it covers.
- ``checkpoints``: Ed25519 signing keys and signed checkpoint rows.
- ``verify``: re-computing the chain and checking checkpoints.
- ``query``: filters, keyset paging and export for auditors (read-only).
- ``prune``: the only code that deletes events (a verified prefix, leaving a signed anchor).
"""
