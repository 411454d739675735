"""Hands-free mode: voice activity starts and ends the user's turns.

A monitor thread reads the microphone all the time and runs Silero VAD on it. Speech
while the bot is idle starts a turn (with the audio from just before the detection, so
the first syllable is not lost); a long enough pause ends it. While the bot thinks or
speaks the microphone is ignored, so the bot never answers its own voice, unless the
user wears a headset: then speaking interrupts the bot, as the talk button does.

When a pause ends the turn is ``turn_end``'s call (``voicebot.audio.turn_end``): the Smart
Turn model, loaded on the monitor thread, or the silence rule if it cannot be loaded. With
``use_text`` the recogniser's latest partial transcript joins it (``voicebot.lm.turn_text``:
can the words end there?), read from the recogniser when the pause is judged.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from voicebot.audio.turn_end import TurnEndPolicy, load_turn_end
from voicebot.audio.vad import FRAME, SileroVad, VadEvent, VoiceActivity
from voicebot.lm.turn_text import load_text_completeness
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
        self._text_score: Any = None  # voicebot.lm.turn_text.TextCompleteness
        self._scored: tuple[str, float | None] = ("", None)  # the latest text, its score

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
        if state in (TurnState.THINKING, TurnState.SPEAKING, TurnState.RECOGNIZING):
            self._quiet_until = time.monotonic() + ECHO_GUARD_S
            return self.headset and state is not TurnState.RECOGNIZING
        return time.monotonic() >= self._quiet_until

    def _run(self) -> None:
        if self.activity is None:
            self.activity = load_turn_end(self.turn_end)
        if self.turn_end.use_text and getattr(self.activity, "text", False) is None:
            self._load_text_score()
        reader = self.mic.reader()
        buffer = np.zeros(FRAME * 64, dtype=np.float32)
        while not self._stop.wait(POLL_S):
            block = reader.read(out=buffer)
            try:
                self._process(block)
            except Exception:  # never let the monitor die silently
                log.exception("hands-free monitor failed; it keeps listening")

    def _load_text_score(self) -> None:

        try:
            if not hasattr(self.conversation.recognizer, "last_partial"):
                raise RuntimeError("the recogniser shows no partial transcripts")
            self._text_score = load_text_completeness()
        except Exception as exc:  # the model alone decides then, or the silence rule
            log.warning("end of turn: the text signal is off (%s)", exc)
            if not self.turn_end.use_model:
                self.activity.model = None
                self.activity.reset()
            return
        self.activity.text = self.partial_text

    def partial_text(self) -> tuple[float, float] | None:
        """The recogniser's latest partial of this turn: (P(finished) of its words, seconds
        of the turn it read); None before the first one."""
        partial = getattr(self.conversation.recognizer, "last_partial", None)
        if partial is None or self._listening_turn is None:
            return None
        text = partial.text
        if text != self._scored[0]:
            self._scored = (text, self._text_score.probability(text))
        score = self._scored[1]
        return None if score is None else (score, partial.audio_seconds)

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
                log.info("hands-free: speech ended (P(finished) %s, text %s)",
                         getattr(self.activity, "last_probability", None),
                         getattr(self.activity, "last_text", None))
                if self._listening_turn is self.conversation.current_turn:
                    self.conversation.stop_listening()
                self._listening_turn = None
