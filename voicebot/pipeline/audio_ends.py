"""The two ends of a session's audio: the microphone it listens to, the speaker it talks to.

``open_devices`` opens the devices the settings name; each can fail on its own (no
microphone: typing still works; no speaker: replies are shown as text) and says so in
one line. Without a sound system (GPU servers, tests) ``AudioEnds`` is made directly from
``voicebot.audio.memory_io``'s ``PacedMicrophone.ring`` and ``MemorySpeaker``.

With a loudspeaker the microphone hears the bot: unless the settings say the user wears a
headset (no processing wanted), the capture cancels the echo of what the player plays
(``voicebot.audio.echo``, WebRTC AEC3) and ``echo_cancelling`` says so, which lets
hands-free listen while the bot speaks. If the canceller cannot load, the reason is
logged and hands-free ignores the microphone while the bot speaks, as before.

``close`` is bounded: closing a stream on a vanished device can hang inside PortAudio, so
each device closes on its own daemon thread and is waited for only ``timeout`` seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voicebot.audio.resample import ASR_RATE
from voicebot.pipeline.conversation import MicrophoneBuffer, Speaker
from voicebot.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class AudioEnds:
    mic: MicrophoneBuffer | None = None  # 16 kHz samples; None: typed turns only
    speaker: Speaker | None = None  # None: replies as text only
    capture: Any = None  # the Capture filling ``mic`` (level meters, stopped on close)
    echo_cancelling: bool = False  # ``mic`` is cleaned of what ``speaker`` plays
    problems: list[str] = field(default_factory=list)  # one line each, for the user
    suspended: bool = False  # streams stopped while nobody needs them (``suspend``)

    def suspend(self) -> None:
        """Stop the device streams, keeping everything else (rings, echo reference).

        An open microphone and speaker cost CPU while nothing happens: their callbacks
        and the capture pump run 100-200 times a second (measured on the virtual devices:
        6.3% of a core for the microphone, 2.4% for the speaker). The session suspends
        them while the conversation is out of sight and idle in push-to-talk mode.
        """
        if self.suspended:
            return
        self.suspended = True
        for stop in (getattr(self.capture, "stop", None), getattr(self.speaker, "close", None)):
            if stop is not None:
                stop()

    def resume(self) -> None:
        """Restart the streams ``suspend`` stopped (opening takes ~10 ms); raises
        AudioDeviceError when a device is gone meanwhile."""
        if not self.suspended:
            return
        self.suspended = False
        for start in (getattr(self.capture, "start", None), getattr(self.speaker, "open", None)):
            if start is not None:
                start()

    def close(self, timeout: float = 0.5) -> bool:
        """Close the devices within ``timeout`` seconds; True if they all closed."""
        closers = [threading.Thread(target=close, name=f"close-{what}", daemon=True)
                   for what, close in (("speaker", getattr(self.speaker, "close", None)),
                                       ("microphone", getattr(self.capture, "stop", None)))
                   if close is not None]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join(timeout)
        self.mic = self.speaker = self.capture = None
        stuck = [closer.name for closer in closers if closer.is_alive()]
        if stuck:
            log.warning("audio devices still closing after %.1f s: %s", timeout,
                        ", ".join(stuck))
        return not stuck


def open_devices(settings: Settings,
                 on_lost: Callable[[Exception], None] | None = None) -> AudioEnds:
    """The microphone and speaker the settings name. ``on_lost`` is called (from an
    audio thread) when an open device stops working."""
    from voicebot.audio.capture import Capture
    from voicebot.audio.devices import AudioDeviceError
    from voicebot.audio.echo import load_echo_canceller
    from voicebot.audio.player import Player

    ends = AudioEnds()
    canceller, why_not = None, "the headset setting asks for no processing"
    if not settings.audio.headset_mode:
        canceller, why_not = load_echo_canceller(ASR_RATE)
    try:
        ends.capture = Capture(settings.audio.input_device, on_error=on_lost,
                               echo_canceller=canceller).start()
        ends.mic = ends.capture.ring(ASR_RATE)
    except AudioDeviceError as exc:
        ends.problems.append(f"No microphone ({exc}); typing works")
    try:
        ends.speaker = Player(settings.audio.output_device, on_error=on_lost).open()
    except AudioDeviceError as exc:
        ends.problems.append(f"No speaker ({exc}); replies are shown as text")
    if ends.capture is not None and ends.speaker is not None:
        ends.echo_cancelling = ends.capture.set_echo_reference(ends.speaker.reference)
        if not ends.echo_cancelling:
            log.log(logging.INFO if settings.audio.headset_mode else logging.WARNING,
                    "echo cancellation off (%s): hands-free ignores the microphone while "
                    "the bot speaks", why_not)
    return ends
