"""The chat model, loaded once per test session (the real embedded SmolLM2-135M).

Everything is passed explicitly: session fixtures are built before the per-test home
folder exists, so the user's own settings must not leak in. The model's ONNX export is
cached in the shared models folder like the other conversions.
"""

from __future__ import annotations

import pytest

from voicebot.settings import DEFAULT_SYSTEM_PROMPT

MODEL_ID = "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def chat_model():
    from voicebot.lm.loading import load_chat_model

    return load_chat_model(MODEL_ID, system_prompt=DEFAULT_SYSTEM_PROMPT,
                           max_reply_tokens=60, context_tokens=2048, backend="auto",
                           device="cpu")


@pytest.fixture(scope="session")
def tokenizer(chat_model):
    return chat_model.tokenizer
