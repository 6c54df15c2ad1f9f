"""LoRA adapters the gateway serves: the registry (rows in the gateway database) and promotion.

Promotion is a gateway action (``routes/admin.py`` loads a promoted adapter into the running vLLM
through ``serving.client``); ``registry.py`` holds the rows and the pure promotion rule.
"""
