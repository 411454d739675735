"""Does the speech match the Vosk model's language? Say so when it does not.

A Vosk model only knows its own language: the Korean model turns English speech into
fluent-looking Korean, with word confidences no lower than on Korean speech (measured:
0.66-0.85 mean on the English test recordings, 0.59-0.83 on Korean). Vosk itself cannot
tell, so the check asks the installed English Whisper model (``whisper-tiny-en``) how
well it explains the same audio: its mean log-probability per decoded token.

Measured on this machine (greedy decode, whisper-tiny-en): the English test recordings
score -0.05 to -0.85 (the short "ten of clubs" phrases lowest); espeak-ng speech in
Korean -1.6 to -2.1, French -2.0, German -1.3. Above ``ENGLISH_ABOVE`` the speech is
called English, below ``OTHER_BELOW`` not English, in between (and for silence or very
short audio) nothing is said: the check only speaks when it is sure. It cannot name
the other language (tiny.en has no language id); it only knows English from not-English.

The check costs one greedy decode of at most ``PROBE_SECONDS`` of audio (~0.1-0.3 s on
2 CPU cores) and loads whisper-tiny-en once (~2 s, ~80 MB); it runs only for a Vosk
model whose catalog language is known, and is skipped when whisper-tiny-en is missing.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from voicebot.models.catalog import load_catalog
from voicebot.models.errors import ModelError

log = logging.getLogger(__name__)

PROBE_MODEL = "whisper-tiny-en"
ENGLISH_ABOVE = -1.0  # mean log-probability per token: English speech
OTHER_BELOW = -1.3  # ... not English
NO_SPEECH_ABOVE = 0.6  # Whisper thinks there is no speech: say nothing
MIN_SECONDS = 0.8  # too little audio to judge
PROBE_SECONDS = 15.0

LANGUAGE_NAMES = {"en": "English", "ko": "Korean", "de": "German", "fr": "French",
                  "es": "Spanish", "ru": "Russian", "zh": "Chinese", "ja": "Japanese"}


@dataclass
class LanguageCheck:
    """What the check found for one utterance (``Hypothesis.extras["language"]``)."""

    model_language: str  # the recogniser's, e.g. "ko" (catalog language, region dropped)
    speech: str  # "en", "not-en" or "unknown"
    english_logprob: float | None  # the probe's mean log-probability per token
    mismatch: bool
    message: str  # one line for the user; "" unless mismatch

    def to_dict(self) -> dict:
        return asdict(self)


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def model_language(model_id: str) -> str | None:
    """The catalog language of a model, without region ("en-US" -> "en"); None if unknown."""

    try:
        language = load_catalog().get(model_id).language
    except ModelError:
        return None
    language = language.split("-")[0].lower()
    return None if language in ("", "multilingual") else language


def english_logprob(audio: np.ndarray, sample_rate: int = 16000) -> tuple[float, float] | None:
    """(mean log-probability per token, no-speech probability) of the English probe, or
    None when the probe model is not installed."""

    try:
        from voicebot.asr.whisper_engine import load_whisper

        model = load_whisper(PROBE_MODEL, "cpu")
    except (ModelError, OSError, ImportError) as exc:
        log.debug("language check unavailable: %s", exc)
        return None
    result = model.decode(np.ascontiguousarray(audio[:int(PROBE_SECONDS * sample_rate)]))
    best = result.sequences[0]
    return best.mean_logprob, float(result.no_speech_prob)


def classify(logprob: float | None, no_speech: float = 0.0) -> str:
    if logprob is None or no_speech > NO_SPEECH_ABOVE:
        return "unknown"
    if logprob > ENGLISH_ABOVE:
        return "en"
    if logprob < OTHER_BELOW:
        return "not-en"
    return "unknown"


def check_language(audio: np.ndarray, language: str, model_id: str = "",
                   sample_rate: int = 16000) -> LanguageCheck | None:
    """The check for one utterance heard by a model of ``language``; None when the probe
    is unavailable."""
    if len(audio) < MIN_SECONDS * sample_rate:
        return LanguageCheck(language, "unknown", None, False, "")
    probe = english_logprob(audio, sample_rate)
    if probe is None:
        return None
    logprob, no_speech = probe
    speech = classify(logprob, no_speech)
    mismatch = (speech == "en") != (language == "en") and speech != "unknown"
    message = ""
    if mismatch:
        model = f" ({model_id})" if model_id else ""
        if speech == "en":
            message = (f"This sounds like English, but the speech recogniser{model} only "
                       f"knows {language_name(language)}: the text is likely wrong. "
                       "Choose an English recogniser in Settings.")
        else:
            message = (f"This does not sound like English, but the speech recogniser{model} "
                       "only knows English: the text is likely wrong.")
    return LanguageCheck(language, speech, round(logprob, 3), mismatch, message)


def language_notice(hypotheses) -> str:
    """The one-line mismatch message carried by a result's best hypothesis, or ""."""
    for hyp in hypotheses[:1]:
        check = (hyp.extras or {}).get("language")
        if check and check.get("mismatch"):
            return check.get("message", "")
    return ""
