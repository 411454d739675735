"""A learned end of turn: Smart Turn v3.2 decides whether a pause ends the user's turn.

The silence rule (``VoiceActivity``) ends a turn after a fixed pause: too short and a user
who stops to think is cut off, too long and everyone waits in dead air. Smart Turn v3.2
(Daily, BSD-2-Clause; the ``smart-turn-v3.2`` model, an int8 ONNX from the pipecat-ai
wheel) is a Whisper-tiny encoder with a classifier head that reads the last 8 s of a turn
and says how likely it is that the speaker has finished: wording, intonation and the
shape of the last syllable, not the length of the pause.

``TurnEnd`` uses it as a policy on top of the VAD. Speech starts a turn exactly as
with ``VoiceActivity``. When the VAD has heard ``complete_ms`` of silence the model reads
the turn: a finished turn ends there; an unfinished one waits until ``incomplete_ms`` of
silence (the cap), and speech that resumes before then reopens the turn (the next pause
asks the model again). Without a model (it failed to load) the plain silence rule
(``silence_ms``) decides. ``voicebot bench endpoint`` measures the cut-offs and the dead
air of both.

The front end is our own (numpy; only the filterbank comes from librosa): Whisper's
log-mel (16 kHz, 25 ms Hann windows every 10 ms, 80 Slaney mel bands, ``log10`` clamped
to 8 decades below the peak, scaled by ``(x + 4) / 4``) over exactly 8 s: a shorter turn is
padded with zeros in front, a longer one keeps its last 8 s; the waveform is normalised to
zero mean and unit variance first, as the model was trained (pipecat 1.14's
``LocalSmartTurnAnalyzerV3``). The model's one input is ``input_features`` (batch x 80 x
800) and its output the probability (already a sigmoid) that the turn is complete.

One inference over 8 s takes about 110 ms (p90 170 ms) on one thread of the 2-core test
machine (``bench endpoint``); it runs on the hands-free monitor thread with
``intra_op_num_threads = 1`` (the CPU budget of ARCHITECTURE.md), and counts as dead air.

Measured with ``voicebot bench endpoint`` (seed 17): the model answers quickly on finished
turns (dead air median 410 ms against 746 ms for the 700 ms silence rule) but calls most
clean word-boundary cuts of fluent speech finished too (all but a few Piper cuts; on
LibriVox reading it separates some), so on pauses of 300-1200 ms it cuts 86% of the paused
streams off against 65% for the silence rule. Its probability also moves with the length
of the trailing silence it sees. Real mid-thought pauses (hesitation, continuation
intonation, "um") are what it was trained on; the bench's spliced pauses are not.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voicebot.audio.resample import ASR_RATE
from voicebot.audio.vad import FRAME, VadEvent, VoiceActivity

log = logging.getLogger(__name__)

MODEL_ID = "smart-turn-v3.2"
WINDOW_S = 8  # the model reads exactly this much audio
N_FFT = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
N_MELS = 80
FRAMES = WINDOW_S * ASR_RATE // HOP  # 800 feature frames
LOG_FLOOR = 1e-10
DYNAMIC_RANGE = 8.0  # decades of log10 power kept below the loudest bin
PREROLL_S = 0.5  # audio before the detected speech start that the model also reads


@functools.cache
def _filterbank() -> np.ndarray:
    """Whisper's mel filterbank: (80, 201), Slaney scale and area normalisation."""
    import librosa

    bank = librosa.filters.mel(sr=ASR_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0,
                               fmax=ASR_RATE / 2, htk=False, norm="slaney", dtype=np.float64)
    bank.setflags(write=False)
    return bank


@functools.cache
def _hann() -> np.ndarray:
    return np.hanning(N_FFT + 1)[:-1]  # periodic, as torch.hann_window


def fit_window(audio: np.ndarray) -> np.ndarray:
    """The last 8 s of ``audio`` (16 kHz), zero-padded in front to exactly 8 s."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    size = WINDOW_S * ASR_RATE
    if len(audio) >= size:
        return audio[len(audio) - size:]
    return np.concatenate([np.zeros(size - len(audio), np.float32), audio])


def log_mel(audio: np.ndarray) -> np.ndarray:
    """The model's input features of a turn: float32 (80, 800)."""
    x = fit_window(audio)
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")  # centred frames
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:FRAMES]
    power = np.abs(np.fft.rfft(frames * _hann(), axis=1)) ** 2  # (800, 201)
    mel = np.log10(np.maximum(power @ _filterbank().T, LOG_FLOOR)).T
    mel = np.maximum(mel, mel.max() - DYNAMIC_RANGE)
    return ((mel + 4.0) / 4.0).astype(np.float32)


class SmartTurn:
    """P(the turn is complete) of 16 kHz speech that has just paused."""

    def __init__(self, model_path: str | Path | None = None, threads: int = 1) -> None:
        import onnxruntime as ort

        if model_path is None:
            from voicebot.models import resolve

            model_path = resolve(MODEL_ID)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_path), options,
                                            providers=["CPUExecutionProvider"])
        self.last_seconds = 0.0  # how long the last call took

    def probability(self, audio: np.ndarray) -> float:
        """How likely the speaker has finished, given the turn so far (last 8 s used)."""
        started = time.perf_counter()
        features = log_mel(audio)[None]
        (output,) = self.session.run(None, {"input_features": features})
        self.last_seconds = time.perf_counter() - started
        return float(np.clip(output.reshape(-1)[0], 0.0, 1.0))


@dataclass(frozen=True)
class TurnEndPolicy:
    """When a pause ends a hands-free turn (the product defaults; the Session passes the
    user's from ``AudioSettings``)."""

    learned: bool = True  # False: the silence rule alone
    complete_ms: float = 250.0  # silence before the model is asked; a finished turn ends
    incomplete_ms: float = 2000.0  # the longest wait when the model says "not finished"
    threshold: float = 0.5  # P(complete) at or above this ends the turn
    silence_ms: float = 700.0  # the silence rule, used without the model

    @classmethod
    def from_settings(cls, audio: Any) -> TurnEndPolicy:
        """From an ``AudioSettings`` (handed in; this never reads the settings file)."""
        return cls(learned=audio.turn_end_learned, complete_ms=audio.turn_end_complete_ms,
                   incomplete_ms=audio.turn_end_incomplete_ms,
                   threshold=audio.turn_end_threshold, silence_ms=audio.silence_end_ms)


@dataclass
class TurnEnd(VoiceActivity):
    """``VoiceActivity`` whose end of speech is decided by ``model`` (see the module doc).

    Give it the audio with ``hear(block)`` before the ``update`` calls for the block's
    frames, so that the model reads the turn up to the pause. Without a model, or with
    ``policy.learned`` off, it is the silence rule with ``policy.silence_ms``.
    """

    policy: TurnEndPolicy = field(default_factory=TurnEndPolicy)
    model: SmartTurn | None = None
    last_probability: float | None = None  # of the latest check (logs, benches)
    checks: int = 0  # how many times the model was asked
    _audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)
    _heard: int = 0  # samples heard in all
    _turn_start: int = 0  # the sample (of all heard) where the current turn starts
    _asked: bool = False  # the model was asked during this pause
    _limit_ms: float = 0.0  # the silence that ends the turn in this pause

    def __post_init__(self) -> None:
        self._keep = int((WINDOW_S + PREROLL_S) * ASR_RATE)
        self._reopen()

    @property
    def learned(self) -> bool:
        return self.model is not None and self.policy.learned

    def _reopen(self) -> None:
        """Speech (again): the next pause is judged afresh."""
        self._asked = False
        self._limit_ms = self.policy.incomplete_ms if self.learned else self.policy.silence_ms

    def reset(self) -> None:
        super().reset()
        self._reopen()

    def hear(self, audio: np.ndarray) -> None:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        self._audio = np.concatenate([self._audio[-self._keep:], audio])
        self._heard += len(audio)

    def turn_audio(self) -> np.ndarray:
        """The current turn from just before its speech started (at most 8.5 s)."""
        size = min(len(self._audio), self._heard - self._turn_start)
        return self._audio[len(self._audio) - size:]

    def update(self, probability: float, frame_ms: float = 1000.0 * FRAME / ASR_RATE
               ) -> VadEvent | None:
        if not self.in_speech:
            event = super().update(probability, frame_ms)
            if event is VadEvent.SPEECH_START:
                self._turn_start = self._heard - int((PREROLL_S + self.start_ms / 1000)
                                                     * ASR_RATE)
                self._reopen()
            return event
        if probability >= self.threshold - 0.15:  # not quiet: the turn goes on
            if self._asked:
                self._reopen()
            self._run_ms = 0.0
            return None
        self._run_ms += frame_ms
        if self.learned and not self._asked and self._run_ms >= self.policy.complete_ms:
            self._asked = True
            if self._finished():
                return self._end()
        return self._end() if self._run_ms >= self._limit_ms else None

    def _end(self) -> VadEvent:
        self.in_speech, self._run_ms = False, 0.0
        self._reopen()
        return VadEvent.SPEECH_END

    def _finished(self) -> bool:
        assert self.model is not None
        try:
            self.last_probability = self.model.probability(self.turn_audio())
        except Exception:  # a failing model must not take hands-free down
            log.exception("end of turn: the model failed; the silence rule decides from now")
            self.model, self.last_probability = None, None
            self._limit_ms = self.policy.silence_ms
            return False
        self.checks += 1
        return self.last_probability >= self.policy.threshold


def load_turn_end(policy: TurnEndPolicy | None = None, model_path: str | Path | None = None,
                  threads: int = 1) -> TurnEnd:
    """The hands-free end-of-turn decider for ``policy``; the silence rule, with the reason
    logged, when the model is off or cannot be loaded (hands-free never fails for it)."""
    policy = policy or TurnEndPolicy()
    model = None
    if policy.learned:
        try:
            model = SmartTurn(model_path, threads=threads)
        except Exception as exc:
            log.warning("end of turn: %s could not be loaded (%s); ending turns after %.0f ms "
                        "of silence instead", MODEL_ID, exc, policy.silence_ms)
    return TurnEnd(policy=policy, model=model)
