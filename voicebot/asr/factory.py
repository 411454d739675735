"""Build the recogniser and n-gram LM that the settings name."""

from __future__ import annotations

from voicebot.asr.recognizer import PartialCallback, Recognizer
from voicebot.lm.ngram import load_catalog_ngram

ENGINES = ("whisper", "vosk")


def default_model_for(engine: str) -> str:
    return {"whisper": "whisper-tiny-en", "vosk": "vosk-ko"}[engine]


def create_recognizer(engine: str = "whisper", model_id: str | None = None, *, nbest: int = 5,
                      on_partial: PartialCallback | None = None, device: str = "auto",
                      streaming: bool = True, word_timings: bool = False,
                      threads: int = 1) -> Recognizer:
    """A ready recogniser; models are loaded once per process and shared.

    ``threads``: Whisper's CPU threads (the conversation gives it both cores: it runs
    mostly alone).

    ``word_timings``: Whisper aligns words only when asked (it costs a decoder pass per
    hypothesis); Vosk always gives them.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown ASR engine {engine!r}; choose one of {', '.join(ENGINES)}")
    model_id = model_id or default_model_for(engine)
    if engine == "whisper":
        from voicebot.asr.whisper_engine import WhisperRecognizer, load_whisper

        return WhisperRecognizer(load_whisper(model_id, device, threads), nbest=nbest,
                                 streaming=streaming, word_timings=word_timings,
                                 on_partial=on_partial)
    from voicebot.asr.vosk_engine import VoskRecognizer, load_vosk_model

    return VoskRecognizer(load_vosk_model(model_id), nbest=nbest, on_partial=on_partial)


def recognizer_from_settings(asr_settings, on_partial: PartialCallback | None = None,
                             device: str = "auto", threads: int = 1) -> Recognizer:
    """``asr_settings``: ``voicebot.settings.AsrSettings``."""
    engine = asr_settings.engine
    model_id = asr_settings.model
    # A Whisper model id with the Vosk engine (or the reverse) is a stale setting.
    if (engine == "vosk") != model_id.startswith("vosk"):
        model_id = default_model_for(engine)
    return create_recognizer(engine, model_id, nbest=asr_settings.nbest,
                             on_partial=on_partial, device=device, threads=threads)


def ngram_from_settings(asr_settings):
    """The rescoring LM, or None when the settings name none."""
    if not asr_settings.ngram_model:
        return None

    return load_catalog_ngram(asr_settings.ngram_model)
