"""The learned end of turn: Smart Turn v3.2 on real recorded speech, and the policy that
ends hands-free turns with it, driven by Silero VAD over real audio frames."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf

from voicebot.audio.turn_end import (
    FRAMES,
    N_MELS,
    SmartTurn,
    TurnEnd,
    TurnEndPolicy,
    fit_window,
    load_turn_end,
    log_mel,
)
from voicebot.audio.vad import FRAME, SileroVad, VadEvent

LIBRIVOX = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-"
# Each cut at a quiet point between two words (Whisper's timings, then the quietest 10 ms):
# "and mister john dashwood had then leisure to consider how much | there might be
# prudently in his power to do for them".
SENTENCE, SENTENCE_CUT = LIBRIVOX + "0870.wav", 4.405
# "unless to be rather cold hearted and rather selfish is | to be ill disposed".
SECOND, SECOND_CUT = LIBRIVOX + "0890.wav", 4.02
RATE = 16000


def _read(path: str) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    assert rate == RATE
    return audio


def _quiet(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (1e-3 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)


@pytest.fixture(scope="module")
def model() -> SmartTurn:
    return SmartTurn()


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


def test_features_are_whisper_log_mel_over_eight_seconds():
    audio = _read(SECOND)
    features = log_mel(audio)
    assert features.shape == (N_MELS, FRAMES) == (80, 800) and features.dtype == np.float32
    assert features.max() <= 1.0 + (features.max() - features.min()) and \
        features.max() - features.min() <= 2.0 + 1e-6  # 8 decades, scaled by 1/4
    # A short turn is padded in front: its speech is at the end of the window.
    assert np.array_equal(fit_window(audio)[-len(audio):], audio)
    assert not fit_window(audio)[:8 * RATE - len(audio)].any()
    long = np.concatenate([audio] * 4)
    assert np.array_equal(fit_window(long), long[-8 * RATE:])


@pytest.mark.parametrize("path,cut", [(SENTENCE, SENTENCE_CUT), (SECOND, SECOND_CUT)])
def test_model_separates_a_finished_sentence_from_the_same_sentence_cut(model, path, cut):
    audio = _read(path)
    finished = model.probability(np.concatenate([audio, _quiet(0.25)]))
    unfinished = model.probability(np.concatenate([audio[:int(cut * RATE)], _quiet(0.25)]))
    assert finished > 0.5 > unfinished, (finished, unfinished)
    assert finished - unfinished > 0.5


def _drive(activity: TurnEnd, vad: SileroVad, audio: np.ndarray) -> list[tuple[VadEvent, float]]:
    """Frame by frame as hands-free does: hear the audio, then update on its probability."""
    vad.reset()
    events = []
    for index in range(len(audio) // FRAME):
        frame = audio[index * FRAME:(index + 1) * FRAME]
        activity.hear(frame)
        for probability in vad.probabilities(frame):
            event = activity.update(probability)
            if event is not None:
                events.append((event, (index + 1) * FRAME / RATE))
    return events


def test_policy_ends_a_finished_turn_after_a_short_pause(model, vad):
    audio = _read(SENTENCE)
    stream = np.concatenate([_quiet(0.5), audio, _quiet(2.5)])
    activity = TurnEnd(policy=TurnEndPolicy(), model=model)
    events = _drive(activity, vad, stream)
    assert [e for e, _ in events] == [VadEvent.SPEECH_START, VadEvent.SPEECH_END]
    end_of_speech = 0.5 + len(audio) / RATE
    assert events[1][1] - end_of_speech < 0.6  # the silence rule alone waits 0.7 s more
    assert activity.checks == 1 and activity.last_probability >= 0.5


def test_policy_waits_on_an_unfinished_turn(model, vad):
    audio = _read(SENTENCE)[:int(SENTENCE_CUT * RATE)]
    stream = np.concatenate([_quiet(0.5), audio, _quiet(3.0)])
    policy = TurnEndPolicy(complete_ms=250, incomplete_ms=2000)
    activity = TurnEnd(policy=policy, model=model)
    events = _drive(activity, vad, stream)
    assert [e for e, _ in events] == [VadEvent.SPEECH_START, VadEvent.SPEECH_END]
    waited = events[1][1] - (0.5 + len(audio) / RATE)
    assert 2.0 <= waited < 2.6, waited  # the cap, not the short pause
    assert activity.last_probability < 0.5


def test_speech_that_resumes_reopens_the_turn(model, vad):
    audio = _read(SENTENCE)
    cut = int(SENTENCE_CUT * RATE)
    stream = np.concatenate([_quiet(0.5), audio[:cut], _quiet(0.9, seed=1), audio[cut:],
                             _quiet(2.5, seed=2)])
    activity = TurnEnd(policy=TurnEndPolicy(), model=model)
    events = _drive(activity, vad, stream)
    # One turn: the pause was judged unfinished and the speech after it continued it.
    assert [e for e, _ in events] == [VadEvent.SPEECH_START, VadEvent.SPEECH_END]
    assert events[1][1] > 0.5 + 0.9 + len(audio) / RATE
    assert activity.checks >= 2  # the pause, and the end


def test_without_the_model_the_silence_rule_decides(vad, caplog):
    with caplog.at_level(logging.WARNING, logger="voicebot.audio.turn_end"):
        activity = load_turn_end(TurnEndPolicy(silence_ms=700), model_path="/nonexistent.onnx")
    assert activity.model is None and "could not be loaded" in caplog.text
    audio = _read(SECOND)[:int(SECOND_CUT * RATE)]
    events = _drive(activity, vad, np.concatenate([_quiet(0.5), audio, _quiet(1.5)]))
    assert [e for e, _ in events] == [VadEvent.SPEECH_START, VadEvent.SPEECH_END]
    waited = events[1][1] - (0.5 + len(audio) / RATE)
    assert 0.7 <= waited < 1.1, waited
    assert load_turn_end(TurnEndPolicy(learned=False)).model is None


def test_the_wait_grows_as_the_turn_looks_less_finished():
    two_step = TurnEndPolicy(complete_ms=250, incomplete_ms=2000, threshold=0.5)
    assert two_step.wait_ms(0.5) == 250 and two_step.wait_ms(0.49) == 2000
    policy = TurnEndPolicy(complete_ms=150, incomplete_ms=2000, threshold=0.8,
                           unfinished=0.3, use_text=True)
    waits = [policy.wait_ms(p) for p in (0.9, 0.8, 0.6, 0.4, 0.3, 0.1)]
    assert waits[:2] == [150, 150] and waits[-2:] == [2000, 2000]
    assert waits == sorted(waits) and 150 < waits[2] < waits[3] < 2000
    # The model's and the text's log-odds add: a finished-sounding voice saying "... to the"
    # is not finished; both saying finished is surer than either.
    assert policy.combined(0.95, 0.01) < 0.3 < 0.95 < policy.combined(0.95, 0.9)
    assert policy.combined(0.95, None) == 0.95
    assert TurnEndPolicy().combined(0.95, 0.01) == 0.95  # the text off: the model alone
