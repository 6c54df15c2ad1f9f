"""Warden finetune: tool-use training data, LoRA training, evaluation and export."""
