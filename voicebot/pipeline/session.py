"""Build a conversation from the user's settings: engines, audio devices, wiring.

Loading the engines takes seconds (models are read and warmed up), so the GUI calls
``load_engines`` from a worker thread. Opening audio is separate because it can fail on
its own (no microphone) while typed conversation still works.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from voicebot.pipeline.conversation import Conversation, ConversationListener
from voicebot.settings import Settings

log = logging.getLogger(__name__)

# Threads per stage on the CPU. The stages overlap (the chat model generates while the
# voice speaks the first clause), and on a 2-core machine two 2-thread stages at once
# collapse throughput, so each gets one; Whisper runs mostly alone and gets two.
ASR_THREADS = 2
CHAT_THREADS = 1
TTS_THREADS = 1
# For the same reason the voice decodes one window at a time here: beside the chat model
# it already runs far ahead of playback, and a third busy thread would starve the audio
# threads. (`voicebot say` and `bench tts` use both cores.)
TTS_PARALLEL_WINDOWS = 1

ProgressFn = Callable[[str], None]


@dataclass
class Engines:
    recognizer: Any
    ngram: Any  # n-gram LM for rescoring, or None
    chat: Any
    synthesizer: Any

    def rescorer(self, settings: Settings) -> Callable[[list[Any]], list[Any]]:
        from voicebot.asr.rescoring import Weights, rescore

        weights = Weights.from_settings(settings.asr)
        return lambda hypotheses: rescore(hypotheses, self.ngram, weights).hypotheses


def load_engines(settings: Settings, progress: ProgressFn | None = None,
                 device: str = "auto") -> Engines:
    """Load recognizer, rescoring LM, chat model and voice named by the settings."""
    import torch

    from voicebot.asr.adapt import recognizer_from_settings_adapted
    from voicebot.asr.adapt_vocab import ngram_with_user_lm, refresh_user_lm
    from voicebot.lm.loading import load_chat_model
    from voicebot.memory import release_freed_memory
    from voicebot.tts.voices import VoiceOptions, load_voice

    say = progress or (lambda message: None)
    torch.set_num_threads(ASR_THREADS)
    say("loading the speech recognizer")
    # With the user's LoRA adapter when they trained one and switched it on.
    recognizer = recognizer_from_settings_adapted(settings.asr, device=device)
    # Whisper's float32 weights before int8 quantisation and its warm-up activations.
    release_freed_memory()
    say("loading the rescoring language model")
    # The general n-gram LM, mixed with one built from the user's own words (prompts
    # read, conversation history), so names they use are recognised more readily.
    refresh_user_lm()
    ngram = ngram_with_user_lm(settings.asr)
    say("loading the chat model")
    chat = load_chat_model(settings.chat.model, system_prompt=settings.chat.system_prompt,
                           max_reply_tokens=settings.chat.max_reply_tokens,
                           context_tokens=settings.chat.context_tokens, device=device,
                           threads=CHAT_THREADS)
    say("loading the voice")
    synthesizer = load_voice(settings.tts.voice, VoiceOptions(
        device=device, threads=TTS_THREADS, parallel_windows=TTS_PARALLEL_WINDOWS))
    release_freed_memory()
    say("ready")
    return Engines(recognizer, ngram, chat, synthesizer)


def build_conversation(settings: Settings, engines: Engines, *, player: Any,
                       mic: Any = None, listener: ConversationListener | None = None,
                       ) -> Conversation:
    """``mic``: the 16 kHz ring buffer of a running Capture (None: typed turns only)."""
    from voicebot.lm.speech_shaping import ClauseSplitter

    return Conversation(
        chat=engines.chat, synthesizer=engines.synthesizer, player=player,
        splitter_factory=ClauseSplitter, recognizer=engines.recognizer if mic else None,
        mic=mic, rescore=engines.rescorer(settings), listener=listener,
        nbest=settings.asr.nbest)
