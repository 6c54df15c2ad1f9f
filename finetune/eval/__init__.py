"""Evaluations that report their sample size and uncertainty: BFCL v4 by category (BFCL's own AST
checker), a hand-written natural-language set over real MCP schemas, and a multi-turn final-answer check.
Nothing here is ever training data (tests/finetune/eval/test_natural.py and finetune.bfcl.overlap check it)."""
