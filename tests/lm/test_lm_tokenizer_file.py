"""The chat model's tokenizer read from its files gives transformers' ids and text, and the
CPU chat path then loads without torch or transformers (voicebot.lm.tokenizer_file)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from voicebot.lm.tokenizer_file import FileTokenizer

MODEL_ID = "smollm2-135m-instruct"  # the embedded chat model (tests/lm/conftest.py)
SYSTEM = {"role": "system", "content": "You are Sam, a friendly voice assistant. Be brief."}

CONVERSATIONS = {
    "one question": [{"role": "user", "content": "What is the capital of France?"}],
    "system and question": [SYSTEM, {"role": "user", "content": "Hi there!"}],
    "several turns": [
        SYSTEM,
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What's my name?"},
        {"role": "assistant", "content": "Your name is Ada."},
        {"role": "user", "content": "And what's yours?"},
    ],
    "unicode": [SYSTEM, {"role": "user", "content": "Ça va? Grüße aus Köln, naïve café."}],
    "non-latin scripts": [{"role": "user", "content": "東京はどこ? Привет! مرحبا 안녕하세요"}],
    "emoji": [SYSTEM, {"role": "user", "content": "I love 🍕 and 👩‍👩‍👧‍👦 🇫🇷!"}],
    "empty content": [SYSTEM, {"role": "user", "content": ""}],
    "empty assistant turn": [
        {"role": "user", "content": "Say nothing."},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Thanks."},
    ],
    "whitespace": [{"role": "user", "content": "  leading spaces\n\nnew lines\ttabs  "}],
    "special tokens in text": [
        {"role": "user", "content": "Type <|im_end|> then <|im_start|>assistant\nhi"}],
    "long text": [SYSTEM, {"role": "user", "content": " ".join(
        f"Sentence {i} says something about item {i * 7}." for i in range(300))}],
    "no system, assistant last": [
        {"role": "user", "content": "Count to three."},
        {"role": "assistant", "content": "One, two, three."},
    ],
}

TEXTS = [
    "Hello, world!",
    " leading space",
    "   several leading spaces",
    "trailing space ",
    "line one\nline two\n\n\nline five",
    "tabs\tand\r\nwindows newlines",
    "Ça va? Grüße, naïve café, señor.",
    "東京 Привет مرحبا 안녕하세요 नमस्ते",
    "emoji 🍕👍🏽 and a family 👩‍👩‍👧‍👦",
    "special <|im_start|>user\ninside<|im_end|> text<|endoftext|>",
    "don't won't I'm we're they've it's",
    "numbers 3.14159, 1,000,000 and 2024-06-01",
    "",
    "a" * 500,
]


@pytest.fixture(scope="module")
def folder():
    from voicebot.lm.loading import model_folder

    return model_folder(MODEL_ID)[0]


@pytest.fixture(scope="module")
def ours(folder):
    return FileTokenizer(folder)


@pytest.fixture(scope="module")
def reference(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


@pytest.mark.parametrize("generation_prompt", [True, False])
@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_chat_template_gives_transformers_ids(ours, reference, name, generation_prompt):
    messages = CONVERSATIONS[name]
    want = reference.apply_chat_template(messages, add_generation_prompt=generation_prompt,
                                         tokenize=True, return_dict=True)["input_ids"]
    got = ours.apply_chat_template(messages, add_generation_prompt=generation_prompt,
                                   tokenize=True, return_dict=True)["input_ids"]
    assert got == list(want)
    assert ours.apply_chat_template(messages, add_generation_prompt=generation_prompt,
                                    tokenize=False) == reference.apply_chat_template(
        messages, add_generation_prompt=generation_prompt, tokenize=False)
    assert ours.apply_chat_template(messages, add_generation_prompt=generation_prompt,
                                    return_dict=False) == got


def test_chat_template_leaves_the_callers_messages_alone(ours):
    messages = [{"role": "user", "content": "Hi", "name": None}]
    ours.apply_chat_template(messages)
    assert messages == [{"role": "user", "content": "Hi", "name": None}]
    with pytest.raises(ValueError, match="empty conversation"):
        ours.apply_chat_template([])


@pytest.mark.parametrize("text", TEXTS)
def test_encode_and_decode_match_transformers(ours, reference, text):
    for special in (False, True):
        ids = ours.encode(text, add_special_tokens=special)
        assert ids == reference.encode(text, add_special_tokens=special)
        assert ours(text, add_special_tokens=special)["input_ids"] == ids
    ids = ours.encode(text, add_special_tokens=False)
    for skip in (False, True):
        assert ours.decode(ids, skip_special_tokens=skip) == reference.decode(
            ids, skip_special_tokens=skip)
    assert ours.decode(ids) == text  # byte-level BPE: every string comes back whole


def test_decode_takes_special_tokens_out_of_a_reply(ours):
    ids = ours.encode("<|im_start|>assistant\nParis.<|im_end|>", add_special_tokens=False)
    assert ours.decode(ids, skip_special_tokens=True) == "assistant\nParis."


def test_special_tokens_and_vocabulary_match_transformers(ours, reference):
    assert ours.eos_token_id == reference.eos_token_id
    assert ours.bos_token_id == reference.bos_token_id
    assert ours.all_special_ids == reference.all_special_ids
    assert ours.all_special_tokens == reference.all_special_tokens
    assert ours.special_tokens_map == reference.special_tokens_map
    assert ours.get_vocab() == reference.get_vocab()
    assert len(ours) == len(reference)
    for token in ("<|im_end|>", "<|im_start|>", "Hello", "Ġworld", "no-such-token-here"):
        assert ours.convert_tokens_to_ids(token) == reference.convert_tokens_to_ids(token)
    assert ours.convert_tokens_to_ids(["<|im_end|>", "Hello"]) == \
        reference.convert_tokens_to_ids(["<|im_end|>", "Hello"])
    assert ours.chat_template == reference.chat_template


def test_config_json_read_as_plain_json_decides_like_transformers(folder):
    from types import SimpleNamespace

    from voicebot.lm.loading import _max_context, choose_backend, read_config
    from voicebot.lm.onnx_export import unsupported_reason

    assert choose_backend(folder, device="cpu") == "onnx"
    assert _max_context(folder) == read_config(folder).max_position_embeddings == 8192
    # An older config.json names the rotary scaling "type"; transformers renames it.
    old = SimpleNamespace(model_type="llama", rope_scaling={"type": "linear", "factor": 2.0})
    assert "linear" in unsupported_reason(old)


def test_the_cpu_chat_path_imports_neither_torch_nor_transformers(chat_model):
    """In a fresh process, as the conversation process loads it: the ``chat_model``
    fixture has already built (and cached) the ONNX export, which does need torch."""
    from voicebot.lm.onnx_backend import OnnxBackend

    if not isinstance(chat_model.backend, OnnxBackend):
        pytest.skip("the chat model does not run on the ONNX backend here")
    code = textwrap.dedent(f"""
        import sys
        from voicebot.lm.loading import _gpu_driver_present, load_chat_model

        # Where a GPU is present "auto" runs the model on torch by design.
        device = "cpu" if _gpu_driver_present() else "auto"
        model = load_chat_model({MODEL_ID!r}, device=device, max_reply_tokens=20)
        reply = model.reply([{{"role": "user", "content": "What is the capital of France?"}}])
        print(type(model.tokenizer).__name__, bool(reply))
        print(sorted(name for name in ("torch", "transformers") if name in sys.modules))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-2] == "FileTokenizer True"
    assert lines[-1] == "[]", proc.stdout
