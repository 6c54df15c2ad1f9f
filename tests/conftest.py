import pytest

# Session fixtures for a real vLLM (base model + trained adapter), shared by finetune, agent and gateway tests.
pytest_plugins = ("tests.serving.vllm_harness",)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
