"""The end of a hands-free turn with the words: the partial transcript's completeness
(the catalog n-gram) joins Smart Turn. Real models, real speech (the Piper voice, heard by
Whisper tiny as the streaming recogniser hears it), real Silero VAD frames."""

from __future__ import annotations

import numpy as np
import pytest

from voicebot.audio.turn_end import NoModel, SmartTurn, TurnEnd, TurnEndPolicy
from voicebot.audio.vad import FRAME, SileroVad, VadEvent
from voicebot.lm.turn_text import load_text_completeness

RATE = 16000
UNFINISHED, FINISHED = "I want to go to the", "I want to go to the park."
# Smart Turn with the text (a row of `voicebot bench endpoint`), and the text alone.
POLICY = TurnEndPolicy(complete_ms=250, incomplete_ms=2000, threshold=0.9, use_text=True,
                       unfinished=0.3, unknown_text=0.1, recheck_ms=500)
TEXT_ONLY = TurnEndPolicy(use_model=False, complete_ms=150, incomplete_ms=2000, threshold=0.8,
                          use_text=True, unfinished=0.3, unknown_text=0.1, text_lag_ms=300)


@pytest.fixture(scope="module")
def text():
    return load_text_completeness()


@pytest.fixture(scope="module")
def spoken():
    """Each sentence spoken by the embedded Piper voice in a stream of faint noise, and
    the streaming recogniser's partial once it has read the whole sentence, fed as the
    hands-free turn feeds it (from 0.5 s before the speech was detected)."""
    import soxr

    from voicebot.asr.whisper_engine import WhisperRecognizer, load_whisper
    from voicebot.audio.vad import VoiceActivity
    from voicebot.pipeline.bench_endpoint import speech_span
    from voicebot.tts.base import collect
    from voicebot.tts.voices import load_voice

    voice = load_voice()
    voice.set_noise(0.0, 0.0)  # the same speech every run (a noisy take was heard otherwise)
    recognizer = WhisperRecognizer(load_whisper("whisper-tiny-en", "cpu"), nbest=1)
    vad = SileroVad()
    result = {}
    for sentence in (UNFINISHED, FINISHED):
        audio, rate = collect(voice.stream(sentence, split_first=False))
        audio = soxr.resample(audio, rate, RATE).astype(np.float32)
        start, end = speech_span(audio)
        audio = audio[start:end]
        stream = np.concatenate([_quiet(0.5), audio, _quiet(3.0, seed=1)])
        activity = VoiceActivity()
        detected = next(i + 1 for i, p in enumerate(vad.probabilities(stream))
                        if activity.update(p) is VadEvent.SPEECH_START)
        vad.reset()
        recognizer.reset()
        partial = None
        for offset in range(detected * FRAME - RATE // 2, len(stream), 480):
            partial = recognizer.feed(stream[offset:offset + 480]) or partial
            if partial is not None and partial.audio_seconds > (
                    0.5 + len(audio) / RATE) - (detected * FRAME / RATE - 0.5):
                break
        assert partial is not None
        result[sentence] = (stream, len(audio) / RATE, partial)
    return result
def _quiet(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (1e-3 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)


def test_text_marks_a_sentence_cut_at_the_as_unfinished(text):
    assert text.probability(UNFINISHED) < 0.05
    # Whisper writes a word cut off mid-way with a dash (heard for UNFINISHED's Piper take).
    assert text.probability("I want to go to the f-") < 0.05
    assert text.probability(FINISHED) > 0.8
    assert text.probability("and") < 0.05 and text.probability("tell me a joke") > 0.8
    assert text.probability("") is None


def _end_after(sentence: str, spoken, text, policy: TurnEndPolicy = POLICY
               ) -> tuple[float, TurnEnd]:
    """Seconds from the end of the speech to the end of the turn (Silero VAD frames, the
    model and the partial's text as hands-free gives them)."""
    stream, seconds, partial = spoken[sentence]
    activity = TurnEnd(policy=policy, model=SmartTurn() if policy.use_model else NoModel(),
                       text=lambda: (text.probability(partial.text), partial.audio_seconds))
    vad = SileroVad()
    ends = []
    for index in range(len(stream) // FRAME):
        frame = stream[index * FRAME:(index + 1) * FRAME]
        activity.hear(frame)
        for probability in vad.probabilities(frame):
            if activity.update(probability) is VadEvent.SPEECH_END:
                ends.append((index + 1) * FRAME / RATE)
    assert len(ends) == 1, ends
    return ends[0] - (0.5 + seconds), activity


def test_combined_policy_waits_on_an_unfinished_partial(spoken, text):
    assert "the" in spoken[UNFINISHED][2].text.lower()
    waited, activity = _end_after(UNFINISHED, spoken, text)
    assert activity.last_text is not None and activity.last_text < 0.05
    assert waited >= 1.5, (waited, activity.last_probability)


def test_combined_policy_ends_a_finished_partial_quickly(spoken, text):
    assert "park" in spoken[FINISHED][2].text.lower()
    waited, activity = _end_after(FINISHED, spoken, text)
    assert activity.last_text is not None and activity.last_text > 0.8
    assert waited < 0.6, (waited, activity.last_probability)


def test_a_partial_that_lags_the_speech_counts_as_unknown(spoken, text):
    """Text that read only the first half of the turn says nothing about its end."""
    stream, _, partial = spoken[FINISHED]
    activity = TurnEnd(policy=POLICY, model=SmartTurn(),
                       text=lambda: (0.99, partial.audio_seconds / 2))
    vad = SileroVad()
    for index in range(len(stream) // FRAME):
        frame = stream[index * FRAME:(index + 1) * FRAME]
        activity.hear(frame)
        for probability in vad.probabilities(frame):
            if activity.update(probability) is VadEvent.SPEECH_END:
                assert activity.last_text == POLICY.unknown_text
                return
    raise AssertionError("the turn never ended")


def test_the_text_alone_waits_on_the_and_ends_after_park(spoken, text):
    waited, activity = _end_after(UNFINISHED, spoken, text, TEXT_ONLY)
    assert waited >= 1.5 and activity.last_probability == 0.5
    waited, _ = _end_after(FINISHED, spoken, text, TEXT_ONLY)
    assert waited < 0.5, waited



@pytest.fixture(scope="module")
def chat_text(text):
    """The text scored by the chat model (the embedded SmolLM2's ONNX scorer)."""
    from voicebot.lm.hypothesis_scorer import load_hypothesis_scorer
    from voicebot.lm.turn_text import TextCompleteness

    return TextCompleteness(text.lm, sentence_ends=load_hypothesis_scorer(threads=1))


def test_the_chat_model_knows_a_question_is_unfinished_where_the_trigram_does_not(
        text, chat_text):
    """"... the capital" ends sentences often enough for a trigram; a question to a
    chatbot does not end there, and the chat model knows it."""
    assert chat_text.probability("What is the capital") < 0.05
    assert chat_text.probability("What is the capital of France?") > 0.7
    assert chat_text.probability("My name is") < 0.05
    assert chat_text.probability(UNFINISHED) < 0.05
    assert chat_text.probability(FINISHED) > 0.5
    # The rules that need no model still hold: a word that cannot end a sentence.
    assert chat_text.probability("tell me about the weather and") < 0.05
    # What the chat model reads, the bot's question, counts: a place answers it (0.15
    # alone, 0.86 after the question).
    question = [{"role": "assistant", "content": "Where do you live?"}]
    assert chat_text.probability("I live in Paris", question) > 0.7
    assert chat_text.probability("I live in Paris") < 0.4
    # Turns under three words are the n-gram's (the chat model expects "Yes" to go on).
    assert chat_text.probability("Thank you") == pytest.approx(text.probability("Thank you"))


def test_a_chat_model_that_fails_leaves_the_trigram_judging(text):
    from voicebot.lm.turn_text import TextCompleteness

    class Broken:
        def sentence_end_logprob(self, text, context=None):
            raise RuntimeError("the scorer's session is gone")

    broken = TextCompleteness(text.lm, sentence_ends=Broken())
    assert broken.probability(FINISHED) == pytest.approx(text.probability(FINISHED))
    assert broken.sentence_ends is None  # asked once, not at every partial
