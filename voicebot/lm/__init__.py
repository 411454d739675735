"""Language models: n-gram LMs for rescoring and the causal chat LM (GUI-free).

The chat model's public API (heavy libraries load only when a model is loaded):

    from voicebot.lm import load_chat_model, ClauseSplitter
    chat = load_chat_model()                  # the default model, fastest backend here
    for piece in chat.stream(history, cancel):  # history: [{"role", "content"}, ...]
        ...
    splitter = ClauseSplitter()               # push(piece) / flush() -> speakable text

Modules: ``chat`` (ChatModel protocol, LocalChatModel), ``loading`` (ids, folders,
backend choice), ``prompt`` (system prompt + memory within the token budget),
``context_policy`` (what of a long conversation a small model sees), ``user_facts``
(the user's name, city, job, likes), ``identity`` (the bot keeps its name),
``repeat_guard`` (no reply said twice), ``bench_dialogue`` (20-turn conversations),
``decoding`` (token choice, loop guard, streaming text), ``speech_shaping`` (clauses
for TTS), ``onnx_export`` / ``onnx_quantize`` / ``onnx_backend`` (the CPU fast path),
``torch_backend`` (CUDA and any other causal LM), ``cli_chat`` and ``bench``.
"""

from voicebot.lm.chat import FALLBACK_REPLY, ChatModel, GenerationStats, LocalChatModel
from voicebot.lm.decoding import GenerationOptions
from voicebot.lm.loading import load_chat_model
from voicebot.lm.speech_shaping import ClauseSplitter, speakable

__all__ = [
    "FALLBACK_REPLY", "ChatModel", "ClauseSplitter", "GenerationOptions", "GenerationStats",
    "LocalChatModel", "load_chat_model", "speakable",
]
