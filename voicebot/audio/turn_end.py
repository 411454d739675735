"""The end of a hands-free turn: the words so far, Smart Turn v3.2, and the silence.

The silence rule (``VoiceActivity``) ends a turn after a fixed pause: too short and a user
who stops to think is cut off, too long and everyone waits in dead air. ``TurnEnd`` turns
two opinions on "has the user finished?" into a wait:

- the text: the streaming recogniser's latest partial transcript, free at the pause,
  scored by ``voicebot.lm.turn_text`` (the n-gram's P(end of sentence | last words), words
  that cannot end a sentence: "... go to the" 0.004, "... go to the park." 0.9). It reaches
  this module as a number (``TurnEnd.text``, a callable: P(finished), seconds read), so
  audio imports no asr or lm. A partial that read less than the turn up to the pause (by
  more than ``text_lag_ms``: the recogniser decodes every 0.5 s of audio, ~0.1-0.25 s
  each) says nothing about its end: it counts as ``unknown_text`` until a current one
  comes, and each quiet frame looks again;
- Smart Turn v3.2 (Daily, BSD-2-Clause; ``smart-turn-v3.2``, an int8 ONNX from the
  pipecat-ai wheel): a Whisper-tiny encoder with a classifier head that reads the last 8 s
  of the turn (``use_model``; ``NoModel`` stands in, no opinion and no time, without it).

After ``complete_ms`` of silence the two are combined (log-odds added, the model's
weighted ``model_weight``) into P(finished) and the wait set from it: at or above
``threshold`` the turn ends now; below, the wait grows linearly to ``incomplete_ms`` at
``unfinished`` (threshold = unfinished: the two-step rule of the model alone). Speech
that resumes reopens the turn; ``recheck_ms`` asks the model again in a long pause.
Without either opinion (the model failed to load, no partials) the plain silence rule
(``silence_ms``) decides. Everything after the model is arithmetic: microseconds.

The front end is our own (numpy; only the filterbank comes from librosa): Whisper's
log-mel (16 kHz, 25 ms Hann windows every 10 ms, 80 Slaney mel bands, ``log10`` clamped
to 8 decades below the peak, scaled by ``(x + 4) / 4``) over exactly 8 s: a shorter turn is
padded with zeros in front, a longer one keeps its last 8 s; the waveform is normalized to
zero mean and unit variance first, as the model was trained (pipecat 1.14's
``LocalSmartTurnAnalyzerV3``). The model's one input is ``input_features`` (batch x 80 x
800) and its output the probability (already a sigmoid) that the turn is complete. One
inference takes about 110 ms (p90 160-180 ms) on one thread of the 2-core test machine,
on the hands-free monitor thread (``intra_op_num_threads = 1``), and counts as dead air.

Measured with ``voicebot bench endpoint --json`` (63 streams with 300-1200 ms pauses
spliced in at word gaps, 22 whole; the partials simulated from the app's own Whisper
path; cut-offs of the paused streams, median and p90 dead air of all; seeds 17 and 29),
first with the torch recogniser of that time:

                                                   cut-offs     dead air median, p90 ms  whole
                                                   s17   s29    s17         s29          s17/s29
silence 700 ms (the old fallback)                  70%   62%    748, 777    736, 781     0 / 0
silence 1000 ms                                    27%   32%    1068, 1097  1056, 1101   0 / 0
silence 1200 ms                                    4.8%  6.3%   1260, 1289  1240, 1291   0 / 0
Smart Turn alone, 250 ms, p 0.5 (the old default)  86%   79%    410, 517    396, 1830    0 / 0
Smart Turn alone, 150 ms                           76%   70%    326, 1245   343, 1884    1 / 2
Smart Turn + text, 250 ms, p 0.9, recheck 500      65%   60%    417, 747    410, 784     0 / 0
Smart Turn (weight 0.5) + text, 150 ms, p 0.9      63%   62%    396, 1728   384, 1725    2 / 2
text alone, 150 ms, p 0.8 (the default)            63%   57%    398, 2107   352, 2308    2 / 2
text alone, 250 ms, p 0.7, lag 150 ms              49%   49%    398, 1819   472, 1866    1 / 1

(the text rows: unfinished 0.3, a lagging text 0.1 (0.3 for the last), lag 300 ms unless
said; the whole column counts the 22 whole sentences cut off. The silence and text rows
repeat exactly; the Smart Turn rows' dead air moves with the machine's load: a second run
of seed 17, the model at 93 instead of 113 ms, gave 384 ms for the old default, 376 ms
and 62% for the weighted combination, within a stream of the default's 63%.)

The default is the rule with the fewest cut-offs whose median dead air is within 400 ms
and whose cut-offs are no worse than the 700 ms silence rule's, on both seeds. Measured
again (2026-12-07) with the app's ONNX recogniser, whose partials differ, the bench picks
the last row on both seeds, now the default: cut-offs 41% / 49% (seeds 17 / 29) at a
median dead air of 378 / 344 ms, where the former default (150 ms, p 0.8, lag 300) cut
off 49% / 56% at 384 / 312 ms; whole sentences cut 1 / 1 of 22 instead of 2 / 2, turns
never ended within 2.5 s 2 / 3 instead of 8 / 5, p90 dead air 1.84 / 1.90 s instead of
2.11 / 2.00 s. The 28 short turns the bench also says whole ("Stop.", "Why?", "Thank
you.") wait a median 402 / 398 ms (p90 924 / 898 ms; the former 389 / 411, p90 1110 /
1084), 3 of them over a second with either: the trigram does not expect "Stop." or
"Skip." to be a whole sentence. Nothing
comes near the issue's target (<= 5% at <= 400 ms): only the silence rule at 1200 ms
keeps cut-offs near 5%; the silence rule at the default's cut-off rate (800 ms) leaves
844 and 832 ms of dead air. The price of the default: a turn whose words the trigram
does not expect to end there ("... while I work.", "... than he was?") waits up to 2 s
(p90 2.1-2.3 s against 0.78 s), and a natural pause inside 2 of the 22 whole sentences
ended them. Smart Turn
calls most clean word-boundary cuts of fluent speech finished (0.9+ on nearly every Piper
cut), so here it adds cut-offs and inference time; real mid-thought pauses (hesitation,
continuation intonation, "um") are what it was trained on and the bench's spliced pauses
are not, so it stays one setting away (``turn_end_model``).

The words can also be judged by the chat model (``turn_end_text_model`` "chat", with the
n-best scorer loaded: ``lm.turn_text``'s ``sentence_ends``; turns under three words stay
the n-gram's). Measured 2026-12-07 (bench endpoint, the ``text_chat`` rows, its ~0.08 s a
partial modelled as 0.1 s), with the default's wait rule (250 ms, p 0.7, lag 150):

                                   cut-offs   dead air median   whole cut   short turns (28):
                                   s17  s29   s17   s29  (ms)   s17 / s29   median ms, over 1 s
the n-gram (the default)           41%  49%   378   344         1 / 1       402 / 398, 3 / 3
the chat model                     14%  25%   474   448         0 / 0       498 / 494, 7 / 7
the chat model, p 0.5, lag 300     25%  30%   420   388         0 / 0       485 / 493, 6 / 6

The chat model cuts a third to a half as many paused sentences off (the silence rule
needs 1200 ms for those rates) and ends no whole sentence early, but its median dead air
is over the bench's 400 ms bar on seed 17 (the last row passes it on seed 29 only), and
commands it expects to go on ("Set a timer for ten minutes") wait up to the 2 s cap; so
the default stays the n-gram. In a conversation it reads the
bot's last question too ("I live in Paris": 0.15 alone, 0.86 after "Where do you
live?"), which the bench's streams have none of.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
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


class NoModel:
    """The model's place when only the text decides: no opinion (P = 0.5), no time."""

    last_seconds = 0.0

    def probability(self, audio: np.ndarray) -> float:
        return 0.5


@dataclass(frozen=True)
class TurnEndPolicy:
    """When a pause ends a hands-free turn. These defaults are Smart Turn alone, the
    two-step rule; the product's default is ``AudioSettings``'s (the text alone, see the
    module doc), which the Session passes with ``from_settings``."""

    learned: bool = True  # False: the silence rule alone
    use_model: bool = True  # False: the text and the silence decide, Smart Turn is not run
    complete_ms: float = 250.0  # silence before the model is asked; a finished turn ends
    incomplete_ms: float = 2000.0  # the longest wait when the model says "not finished"
    threshold: float = 0.5  # P(complete) at or above this ends the turn
    silence_ms: float = 700.0  # the silence rule, used without the model
    # The partial transcript's P(finished) (``text`` of ``TurnEnd``) joins the model's.
    use_text: bool = False
    unknown_text: float = 0.5  # the text's P(finished) while it lags behind the speech
    # Below ``threshold`` the wait grows linearly to ``incomplete_ms`` at ``unfinished``
    # (= threshold: the two-step rule of the model alone).
    unfinished: float = 0.5
    recheck_ms: float = 0.0  # ask the model again after this much more silence (0: once)
    model_weight: float = 1.0  # the model's log-odds count this much beside the text's
    text_lag_ms: float = 150.0  # a partial that read up to this close to the pause is current
    # Who scores the text (voicebot.lm.turn_text): "ngram" (the trigram, microseconds) or
    # "chat" (the chat model's P(end mark next), ~0.1 s a partial).
    text_model: str = "ngram"

    @classmethod
    def from_settings(cls, audio: Any) -> TurnEndPolicy:
        """From an ``AudioSettings`` (handed in; this never reads the settings file)."""
        return cls(learned=audio.turn_end_learned, use_model=audio.turn_end_model,
                   complete_ms=audio.turn_end_complete_ms,
                   incomplete_ms=audio.turn_end_incomplete_ms,
                   threshold=audio.turn_end_threshold, silence_ms=audio.silence_end_ms,
                   use_text=audio.turn_end_text, unknown_text=audio.turn_end_unknown_text,
                   unfinished=audio.turn_end_unfinished,
                   recheck_ms=audio.turn_end_recheck_ms,
                   text_lag_ms=audio.turn_end_text_lag_ms,
                   model_weight=audio.turn_end_model_weight,
                   text_model=audio.turn_end_text_model)

    def combined(self, model: float, text: float | None) -> float:
        """P(finished) from the model's and the text's (None: the model's alone): their
        log-odds add (two independent opinions on an even prior)."""
        if not self.use_text or text is None:
            return model
        return _sigmoid(self.model_weight * _logit(model) + _logit(text))

    def wait_ms(self, finished: float) -> float:
        """The silence that ends the turn when P(finished) is ``finished``."""
        if finished >= self.threshold:
            return self.complete_ms
        if finished <= self.unfinished:
            return self.incomplete_ms
        share = (self.threshold - finished) / (self.threshold - self.unfinished)
        return self.complete_ms + share * (self.incomplete_ms - self.complete_ms)


def _logit(p: float) -> float:
    p = min(max(p, 1e-3), 1 - 1e-3)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# The latest partial transcript: (its P(finished), seconds of the turn's audio it read,
# counted from PREROLL_S before the speech was detected, as the recogniser's turn starts).
TextScore = Callable[[], "tuple[float, float] | None"]


@dataclass
class TurnEnd(VoiceActivity):
    """``VoiceActivity`` whose end of speech is decided by ``model`` (see the module doc).

    Give it the audio with ``hear(block)`` before the ``update`` calls for the block's
    frames, so that the model reads the turn up to the pause. Without a model, or with
    ``policy.learned`` off, it is the silence rule with ``policy.silence_ms``. ``text``
    (optional) gives the latest partial transcript's P(finished) and how many seconds of
    the turn it read; it is called on every quiet frame once the model was asked, so it
    must be cheap.
    """

    policy: TurnEndPolicy = field(default_factory=TurnEndPolicy)
    model: SmartTurn | NoModel | None = None
    text: TextScore | None = None
    last_probability: float | None = None  # of the latest check (logs, benches)
    last_text: float | None = None  # the text's P(finished) at the latest decision
    checks: int = 0  # how many times the model was asked
    _audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)
    _heard: int = 0  # samples heard in all
    _turn_start: int = 0  # the sample (of all heard) where the current turn starts
    started_at: int = 0  # samples heard when the current turn's speech was detected
    _asked_at: float | None = None  # the silence (ms) when the model was last asked
    _limit_ms: float = 0.0  # the silence that ends the turn in this pause

    def __post_init__(self) -> None:
        self._keep = int((WINDOW_S + PREROLL_S) * ASR_RATE)
        self._reopen()

    @property
    def learned(self) -> bool:
        return self.model is not None and self.policy.learned

    def _reopen(self) -> None:
        """Speech (again): the next pause is judged afresh."""
        self._asked_at = None
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
                self.started_at = self._heard
                self._turn_start = self._heard - int((PREROLL_S + self.start_ms / 1000)
                                                     * ASR_RATE)
                self._reopen()
            return event
        if probability >= self.threshold - 0.15:  # not quiet: the turn goes on
            if self._asked_at is not None:
                self._reopen()
            self._run_ms = 0.0
            return None
        self._run_ms += frame_ms
        if self.learned and self._run_ms >= self.policy.complete_ms:
            recheck = self.policy.recheck_ms
            if self._asked_at is None or (
                    recheck > 0 and self._run_ms - self._asked_at >= recheck):
                self._asked_at = self._run_ms
                self._ask()
            if self.model is not None:  # (still: a failing model leaves the silence rule)
                self._decide()
        return self._end() if self._run_ms >= self._limit_ms else None

    def _end(self) -> VadEvent:
        self.in_speech, self._run_ms = False, 0.0
        self._reopen()
        return VadEvent.SPEECH_END

    def _ask(self) -> None:
        assert self.model is not None
        try:
            self.last_probability = self.model.probability(self.turn_audio())
        except Exception:  # a failing model must not take hands-free down
            log.exception("end of turn: the model failed; the silence rule decides from now")
            self.model, self.last_probability = None, None
            self._limit_ms = self.policy.silence_ms
            return
        self.checks += 1

    def _text_now(self) -> float | None:
        """The text's P(finished), ``unknown_text`` while the partial lags the speech."""
        if self.text is None or not self.policy.use_text:
            return None
        latest = self.text()
        # The recogniser's turn starts PREROLL_S before the detection (hands-free).
        speech_s = (self._heard - self.started_at) / ASR_RATE + PREROLL_S \
            - self._run_ms / 1000
        if latest is None or latest[1] < speech_s - self.policy.text_lag_ms / 1000:
            return self.policy.unknown_text
        return latest[0]

    def _decide(self) -> None:
        assert self.last_probability is not None
        self.last_text = self._text_now()
        finished = self.policy.combined(self.last_probability, self.last_text)
        self._limit_ms = self.policy.wait_ms(finished)


def load_turn_end(policy: TurnEndPolicy | None = None, model_path: str | Path | None = None,
                  threads: int = 1) -> TurnEnd:
    """The hands-free end-of-turn decider for ``policy``; the silence rule, with the reason
    logged, when the model is off or cannot be loaded (hands-free never fails for it).
    With ``use_model`` off it decides by the text alone (give it its ``text``)."""
    policy = policy or TurnEndPolicy()
    model: SmartTurn | NoModel | None = None
    if policy.learned and not policy.use_model:
        model = NoModel() if policy.use_text else None  # neither: the silence rule
    elif policy.learned:
        try:
            model = SmartTurn(model_path, threads=threads)
        except Exception as exc:
            log.warning("end of turn: %s could not be loaded (%s); ending turns after %.0f ms "
                        "of silence instead", MODEL_ID, exc, policy.silence_ms)
    return TurnEnd(policy=policy, model=model)
