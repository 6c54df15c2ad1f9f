"""State several gateway processes share through PostgreSQL: rate-limit budgets (``ratelimits``)
and approval wake-ups (``gateway.approvals.wake`` listens; decisions notify in the same transaction).

Nothing here is used on SQLite, where one process keeps this state in memory.
"""
