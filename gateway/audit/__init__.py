"""The audit log: one writer, hash chain, signed checkpoints, verification, queries, pruning.

- ``writer``: ``AuditWriter``, the ONLY code that inserts audit events (its queue, thread, group commit).
- ``rows``: one event redacted, made storable (``storable``) and serialized, before it has a seq.
- ``append``: the writer thread's half: numbering, chaining, inserting (``insert``), checkpoints.
- ``head``: the chain head in the database and the PostgreSQL append lock.
- ``errors``: ``AuditError`` and what failures tell the operator log.
- ``chain``: the chain's hash function and the fields it covers.
- ``checkpoints``: Ed25519 signing keys and signed checkpoint rows.
- ``verify``: re-computing the chain and checking checkpoints.
- ``query``: filters, keyset paging and export for auditors (read-only).
- ``prune``: the only code that deletes events (a verified prefix, leaving a signed anchor).
"""
