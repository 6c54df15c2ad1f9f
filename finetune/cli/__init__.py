"""`warden model …` (finetune.cli.model) and `warden finetune …` (finetune.cli.runs, with its
`data` group in finetune.cli.data).

Commands parse options and call one function each; torch / transformers are imported inside
commands only (`warden --help` must stay fast).
"""

from __future__ import annotations

import os

from finetune.cli.model import app as model_app
from finetune.cli.runs import app as finetune_app

__all__ = ["finetune_app", "model_app"]

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
