"""The Vosk language check on real speech: English recordings through the Korean model
are flagged, Korean speech is not (``voicebot.asr.vosk_language``)."""

from __future__ import annotations

import json
import re

from voicebot.asr import vosk_language
from voicebot.asr.recognizer import Hypothesis
from voicebot.asr.vosk_engine import VoskRecognizer

HANGUL = re.compile(r"[\uac00-\ud7a3]")
SHORT = "sense_and_sensibility_01_austen_64kb-0880.wav"  # 'he was not an ill disposed...'


def _recognize(model, audio, **kwargs):
    recognizer = VoskRecognizer(model, nbest=2, **kwargs)
    for i in range(0, len(audio), 3200):
        recognizer.feed(audio[i:i + 3200])
    return recognizer, recognizer.finish()


def test_catalog_languages():
    assert vosk_language.model_language("vosk-ko") == "ko"
    assert vosk_language.model_language("vosk-en-us-small-0.15") == "en"
    assert vosk_language.model_language("whisper-base") is None  # multilingual
    assert vosk_language.model_language("no-such-model") is None


def test_english_speech_through_the_korean_model_is_flagged(vosk_model, short_clip):
    recognizer, hyps = _recognize(vosk_model, short_clip)
    assert hyps and HANGUL.search(hyps[0].text)  # Vosk says Korean, confidently
    check = recognizer.last_language_check
    assert check is not None and check.mismatch and check.speech == "en"
    assert check.model_language == "ko"
    assert "English" in check.message and "Korean" in check.message
    for h in hyps:
        assert h.extras["language"]["mismatch"] is True
    assert vosk_language.language_notice(hyps) == check.message


def test_korean_speech_through_the_korean_model_is_not_flagged(vosk_model, korean_speech):
    recognizer, hyps = _recognize(vosk_model, korean_speech)
    check = recognizer.last_language_check
    assert check is not None and not check.mismatch and check.message == ""
    assert check.speech == "not-en"
    assert vosk_language.language_notice(hyps) == ""


def test_every_english_recording_reads_as_english(clips):
    """The probe's side of the decision, on all the English test recordings."""
    for utterance, audio in clips:
        logprob, no_speech = vosk_language.english_logprob(audio)
        assert vosk_language.classify(logprob, no_speech) == "en", (utterance.audio.name,
                                                                      logprob)


def test_no_check_without_a_known_language(vosk_model, short_clip):
    recognizer, hyps = _recognize(vosk_model, short_clip, language=None)
    assert recognizer.last_language_check is None
    assert hyps and "language" not in hyps[0].extras


def test_classify_is_silent_when_unsure():
    assert vosk_language.classify(None) == "unknown"
    assert vosk_language.classify(-0.2, no_speech=0.9) == "unknown"
    assert vosk_language.classify(-1.15) == "unknown"
    assert vosk_language.classify(-0.3) == "en"
    assert vosk_language.classify(-2.0) == "not-en"
    hyp = Hypothesis(text="x", acoustic_score=0.0)
    assert vosk_language.language_notice([hyp]) == ""


def test_transcribe_prints_the_mismatch(utterances, capsys):
    from voicebot.cli import main

    path = next(str(u.audio) for u in utterances if u.audio.name == SHORT)
    assert main(["transcribe", "--engine", "vosk", "--model", "vosk-ko", path]) == 0
    captured = capsys.readouterr()
    assert HANGUL.search(captured.out)
    assert "warning: This sounds like English" in captured.err
    assert main(["transcribe", "--engine", "vosk", "--model", "vosk-ko", "--json",
                 path]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "Korean" in out["language_mismatch"]


def test_an_english_model_on_korean_speech_is_flagged(vosk_model, korean_speech):
    """The other direction, with the Korean model standing in for an English one (the
    check reads only the declared language and the audio)."""
    recognizer, _ = _recognize(vosk_model, korean_speech, language="en")
    check = recognizer.last_language_check
    assert check.mismatch and check.speech == "not-en" and "only knows English" in check.message
