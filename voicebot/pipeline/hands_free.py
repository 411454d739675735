"""Hands-free mode: voice activity starts and ends the user's turns.

A monitor thread reads the microphone all the time and runs Silero VAD on it. Speech
while the bot is idle starts a turn (with the audio from just before the detection, so
the first syllable is not lost); a long enough pause ends it. While the bot thinks or
speaks the microphone is ignored, so the bot never answers its own voice, unless the
user wears a headset: then speaking interrupts the bot, as the talk button does.

When a pause ends the turn is ``turn_end``'s call (``voicebot.audio.turn_end``): the Smart
Turn model, loaded on the monitor thread, or the silence rule if it cannot be loaded.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from voicebot.audio.turn_end import TurnEndPolicy, load_turn_end
from voicebot.audio.vad import FRAME, SileroVad, VadEvent, VoiceActivity
from voicebot.pipeline.conversation import Conversation
from voicebot.pipeline.state import TurnState

log = logging.getLogger(__name__)

PREROLL_S = 0.5  # audio kept from before speech was detected
ECHO_GUARD_S = 0.4  # after the bot stops speaking, its tail may still be in the room
POLL_S = 0.03


class HandsFree:
    def __init__(self, conversation: Conversation, mic: Any, headset: bool = False,
                 vad: SileroVad | None = None, activity: VoiceActivity | None = None,
                 turn_end: TurnEndPolicy | None = None) -> None:
        """``activity``: decides when speech starts and ends (None: ``turn_end``'s policy,
        its model loaded on the monitor thread)."""
        self.conversation = conversation
        self.mic = mic
        self.headset = headset
        self.vad = vad or SileroVad()
        self.activity = activity
        self.turn_end = turn_end or TurnEndPolicy()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listening_turn: Any = None
        self._quiet_until = 0.0
        self.turns_started = 0

    def start(self) -> HandsFree:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hands-free", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop the monitor; True if its thread ended within ``timeout`` seconds."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def _mic_open(self) -> bool:
        """May what the microphone hears now start (or interrupt) a turn?"""
        state = self.conversation.state
        if state in (TurnState.THINKING, TurnState.SPEAKING, TurnState.RECOGNISING):
            self._quiet_until = time.monotonic() + ECHO_GUARD_S
            return self.headset and state is not TurnState.RECOGNISING
        return time.monotonic() >= self._quiet_until

    def _run(self) -> None:
        if self.activity is None:
            self.activity = load_turn_end(self.turn_end)
        reader = self.mic.reader()
        buffer = np.zeros(FRAME * 64, dtype=np.float32)
        while not self._stop.wait(POLL_S):
            block = reader.read(out=buffer)
            try:
                self._process(block)
            except Exception:  # never let the monitor die silently
                log.exception("hands-free monitor failed; it keeps listening")

    def _process(self, block: np.ndarray) -> None:
        if not self._mic_open() and self._listening_turn is None:
            self.activity.reset()
            self.vad.reset()
            return
        self.activity.hear(block)
        for probability in self.vad.probabilities(block):
            event = self.activity.update(probability)
            if event is VadEvent.SPEECH_START and self._listening_turn is None:
                log.info("hands-free: speech started")
                self._listening_turn = self.conversation.start_listening(PREROLL_S)
                self.turns_started += 1
            elif event is VadEvent.SPEECH_END and self._listening_turn is not None:
                log.info("hands-free: speech ended (P(finished) %s)",
                         getattr(self.activity, "last_probability", None))
                if self._listening_turn is self.conversation.current_turn:
                    self.conversation.stop_listening()
                self._listening_turn = None
