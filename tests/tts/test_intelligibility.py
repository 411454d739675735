"""Speech from the embedded voice is understood by the embedded Whisper tiny.en."""

from __future__ import annotations

import pytest

from voicebot.tts.base import collect

SENTENCES = [
    "The weather today is sunny and warm.",
    "Please remind me to call my mother at six o'clock.",
    "I have three cats and two dogs.",
    "Dr. Smith paid $3.50 for a cup of coffee.",
    "Turn off the lights in the kitchen, then lock the front door.",
]


@pytest.fixture(scope="module")
def recognizer():
    from voicebot.asr.factory import create_recognizer

    return create_recognizer("whisper", "whisper-tiny-en", device="cpu", streaming=False)


def test_whisper_understands_the_piper_voice(piper_voice, recognizer):
    from voicebot.asr.audio_input import to_recognizer_audio
    from voicebot.asr.wer import ErrorCounts, count_errors
    from voicebot.text.spoken import normalize

    total, transcripts = ErrorCounts(), []
    for sentence in SENTENCES:
        audio, rate = collect(piper_voice.stream(sentence))
        recognizer.reset()
        recognizer.feed(to_recognizer_audio(audio, rate))
        heard = recognizer.finish()[0].text
        transcripts.append(heard)
        # Score against what the voice was asked to say ("$3.50" is read out in words).
        total.add(count_errors(normalize(sentence), heard))
    assert total.wer <= 0.10, f"WER {total.wer:.1%}: {transcripts}"
