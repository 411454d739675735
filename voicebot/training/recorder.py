"""Recording takes from the microphone at the training rate (22.05 kHz), and playing them.

The capture runs continuously while the wizard's recording pages are open (so a take
starts with no device-opening delay); a take is the audio between ``start`` and
``stop``, read from the capture's 22.05 kHz ring buffer.
"""

from __future__ import annotations

import numpy as np

from voicebot.audio.resample import ASR_RATE, TRAINING_RATE

MAX_TAKE_SECONDS = 60.0


class TakeRecorder:
    def __init__(self, input_device: str = "", output_device: str = "") -> None:
        self.input_device = input_device
        self.output_device = output_device
        self.capture = None
        self.player = None
        self._reader = None

    @property
    def is_open(self) -> bool:
        return self.capture is not None and self.capture.running

    def open(self):
        """Start the microphone (raises ``AudioDeviceError`` with a reason)."""
        from voicebot.audio.capture import Capture

        if self.capture is None:
            self.capture = Capture(self.input_device, output_rates=(ASR_RATE, TRAINING_RATE),
                                   buffer_seconds=MAX_TAKE_SECONDS).start()
        return self.capture

    @property
    def recording(self) -> bool:
        return self._reader is not None

    def start(self) -> None:
        self.open()
        self._reader = self.capture.ring(TRAINING_RATE).reader()  # from now on

    def stop(self) -> np.ndarray:
        """The take so far (mono float32 at 22.05 kHz); recording ends."""
        reader, self._reader = self._reader, None
        if reader is None:
            return np.zeros(0, np.float32)
        return np.array(reader.read(), dtype=np.float32)

    def play(self, samples: np.ndarray, rate: int = TRAINING_RATE) -> None:
        from voicebot.audio.player import Player

        if self.player is None:
            self.player = Player(self.output_device).open()
        self.player.stop()
        self.player.play(np.asarray(samples, dtype=np.float32), rate, last=True)

    def stop_playback(self) -> None:
        if self.player is not None:
            self.player.stop()

    def close(self) -> None:
        self._reader = None
        if self.capture is not None:
            self.capture.stop()
            self.capture = None
        if self.player is not None:
            self.player.close()
            self.player = None
