"""Voice activity detection with Silero VAD (ONNX, on onnxruntime).

The model takes 32 ms frames (512 samples at 16 kHz) and keeps a recurrent state between
them. Each frame is given the last 64 samples of the previous one as context, as the model
was trained with, so a frame boundary never splits a phoneme it cannot see.

``VoiceActivity`` turns per-frame speech probabilities into turn events with hysteresis:
speech starts after ``start_ms`` of frames above ``threshold``, and ends after
``end_ms`` of frames below ``threshold - 0.15``, so short pauses between words do not
end the turn.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voicebot.audio.resample import ASR_RATE

RATE = ASR_RATE  # Silero runs on the recognition audio itself
FRAME = 512  # samples per model call at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame prepended to each frame


class SileroVad:
    """Speech probability per 32 ms frame of 16 kHz mono audio."""

    def __init__(self, model_path: str | Path | None = None, threads: int = 1) -> None:
        import onnxruntime as ort

        if model_path is None:
            from voicebot.models import resolve

            model_path = resolve("silero-vad")
        options = ort.SessionOptions()
        # One thread, no spinning: the VAD runs beside recognition and the plots.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_path), options,
                                            providers=["CPUExecutionProvider"])
        self._sr = np.array(RATE, dtype=np.int64)
        self._input = np.zeros((1, CONTEXT + FRAME), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._input[:] = 0.0
        self._pending = np.zeros(0, dtype=np.float32)

    def frame_probability(self, frame: np.ndarray) -> float:
        """The speech probability of exactly one 512-sample frame."""
        if len(frame) != FRAME:
            raise ValueError(f"a VAD frame is {FRAME} samples at 16 kHz, got {len(frame)}")
        self._input[0, :CONTEXT] = self._input[0, -CONTEXT:]
        self._input[0, CONTEXT:] = np.nan_to_num(frame, nan=0.0, posinf=1.0, neginf=-1.0)
        output, self._state = self.session.run(
            None, {"input": self._input, "state": self._state, "sr": self._sr})
        return float(output[0, 0])

    def probabilities(self, audio: np.ndarray) -> list[float]:
        """Probabilities for every complete frame; a partial frame waits for more audio."""
        audio = np.concatenate([self._pending, np.asarray(audio, dtype=np.float32)])
        n = len(audio) // FRAME
        result = [self.frame_probability(audio[i * FRAME:(i + 1) * FRAME]) for i in range(n)]
        self._pending = audio[n * FRAME:].copy()
        return result


class VadEvent(enum.Enum):
    SPEECH_START = "speech_start"
    SPEECH_END = "speech_end"


@dataclass
class VoiceActivity:
    """Speech start/end decisions from a stream of frame probabilities."""

    threshold: float = 0.5
    start_ms: float = 160.0  # this much speech in a row starts a turn
    end_ms: float = 700.0  # this much silence in a row ends it
    # A single frame this sure starts speech at once (None: only the run of start_ms).
    instant_threshold: float | None = None
    in_speech: bool = False
    _run_ms: float = 0.0

    def update(self, probability: float, frame_ms: float = 1000.0 * FRAME / RATE
               ) -> VadEvent | None:
        if not self.in_speech:
            self._run_ms = self._run_ms + frame_ms if probability >= self.threshold else 0.0
            if self._run_ms >= self.start_ms or (
                    self.instant_threshold is not None
                    and probability >= self.instant_threshold):
                self.in_speech, self._run_ms = True, 0.0
                return VadEvent.SPEECH_START
        else:
            quiet = probability < self.threshold - 0.15
            self._run_ms = self._run_ms + frame_ms if quiet else 0.0
            if self._run_ms >= self.end_ms:
                self.in_speech, self._run_ms = False, 0.0
                return VadEvent.SPEECH_END
        return None

    def hear(self, audio: np.ndarray) -> None:
        """The audio of the frames ``update`` is about to see (the silence rule needs none;
        ``voicebot.audio.turn_end.TurnEnd`` reads the turn)."""

    def reset(self) -> None:
        self.in_speech, self._run_ms = False, 0.0
