"""`warden model …` and `warden finetune …`."""

import typer

model_app = typer.Typer(help="Prepare base models.", no_args_is_help=True)
finetune_app = typer.Typer(help="Build data, train, evaluate and export LoRA adapters.", no_args_is_help=True)
