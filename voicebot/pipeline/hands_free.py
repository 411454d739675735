"""Hands-free mode: voice activity starts and ends the user's turns.

A monitor thread reads the microphone all the time and runs Silero VAD on it. Speech
while the bot is idle starts a turn (with the audio from just before the detection, so
the first syllable is not lost); a long enough pause ends it. While the bot thinks or
speaks the microphone is ignored, so the bot never answers its own voice, unless it
cannot hear itself: the user wears a headset, or the echo canceller cleans the
microphone (the session passes ``headset`` for both).

Then speaking over the bot *pauses* its reply (``Conversation.start_listening(...,
tentative=True)``) and the conversation decides once the words are known: a backchannel
("mm-hmm") or no words resume it, anything else interrupts it. A pause is cheap and
undone at once, so it comes on a quicker onset than a turn: ``PAUSE_ONSET_MS`` of frames
above the VAD threshold instead of ``VoiceActivity.start_ms`` (160 ms). If the full rule
does not confirm speech within ``CONFIRM_MS`` the pause is taken back (``dismiss``) and
the reply goes on after a gap of that length.

Measured with ``voicebot bench echo`` (20 replies, the echo as loud as the user, WebRTC
AEC3): the reply paused within 300 ms of the user's onset for 11 replies where the old
rule interrupted 8, within 150 ms for 4 where it did for 1, at the cost of 3 more false
pauses (5 in 77 s of the bot alone: 3 taken back after 0.3 s, 2 confirmed and settled by
what Whisper heard in the residual, "Okay." and nothing, so both replies went on: no
self-interruption left, where the old rule cut 2 replies off). The rule is not what
limits it: the same VAD on the user's speech alone, with no echo at all, starts within
300 ms for only 12 of 20 (most of those misses were the bench's: it took the hiss before
four recordings' first word for the onset; measured from the word, 19 of 20), and AEC3's
residual suppression leaves the user's voice 8-12 dB quieter while the bot talks (the
cleaned microphone against the user alone, median over the first 2 s of double talk),
which costs a further ~60 ms (median). Shorter onsets buy little: 64 ms pauses 11 in
time too, 32 ms 13, with 6 and 8 false pauses.

A single frame Silero is sure of (``PAUSE_SURE``, p >= 0.8) pauses too, without the run:
``bench echo --echo-seed 0`` and ``1`` (40 replies), same session, before -> after:
within 150 ms 10 -> 14, within 300 ms 20 -> 22, false pauses 6 -> 6 (seed 0: 4 -> 7,
11 -> 13, median 250 -> 214 ms, Whisper's self-interruptions still 0; seed 1: 6 -> 7,
9 -> 9, 383 -> 335 ms). The threshold was picked among 0.6-0.85 on seeds 0-1 (a replay
of the same signals: 0.7 and below add false pauses) and checked on seed 2: within
150 ms 6 -> 8, within 300 ms 10 -> 11, false pauses 1 -> 1.

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
from voicebot.audio.vad import FRAME, RATE, SileroVad, VadEvent, VoiceActivity
from voicebot.lm.turn_text import TextCompleteness, load_text_completeness
from voicebot.pipeline.conversation import Conversation
from voicebot.pipeline.state import TurnState

log = logging.getLogger(__name__)

PREROLL_S = 0.5  # audio kept from before speech was detected
ECHO_GUARD_S = 0.4  # after the bot stops speaking, its tail may still be in the room
PAUSE_ONSET_MS = 96.0  # frames of speech in a row that pause the bot (module docstring)
PAUSE_SURE = 0.8  # ... or a single frame this sure of speech
CONFIRM_MS = 320.0  # ... and the full rule must start speech this soon after, or resume
# The bot's states in which a user's voice pauses it rather than interrupting it.
PAUSABLE = (TurnState.THINKING, TurnState.SPEAKING)
POLL_S = 0.03


class HandsFree:
    def __init__(self, conversation: Conversation, mic: Any, headset: bool = False,
                 vad: SileroVad | None = None, activity: VoiceActivity | None = None,
                 turn_end: TurnEndPolicy | None = None, sentence_ends: Any = None) -> None:
        """``activity``: decides when speech starts and ends (None: ``turn_end``'s policy,
        its model loaded on the monitor thread). ``sentence_ends``: the chat model's
        n-best scorer, which judges the words when the policy's ``text_model`` is
        "chat" (without it the n-gram does)."""
        self.conversation = conversation
        self.mic = mic
        self.headset = headset
        self.vad = vad or SileroVad()
        self.activity = activity
        self.turn_end = turn_end or TurnEndPolicy()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listening_turn: Any = None
        # The quick onset that pauses the bot, and whether the full rule confirmed the
        # paused turn's speech yet (the frames heard since the pause while it has not).
        self._onset = pause_onset()
        self._confirmed = True
        self._unconfirmed_ms = 0.0
        self._quiet_until = 0.0
        self.turns_started = 0
        self._sentence_ends = sentence_ends
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
        if state in (*PAUSABLE, TurnState.RECOGNIZING, TurnState.PAUSED):
            self._quiet_until = time.monotonic() + ECHO_GUARD_S
            # Recognising (or settling a pause): what is heard now waits for the result.
            return self.headset and state in PAUSABLE
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
            if self.turn_end.text_model == "chat":
                if self._sentence_ends is None:
                    log.warning("end of turn: no chat model scorer (asr.neural_weight is "
                                "0?): the n-gram judges the words")
                else:
                    self._text_score = TextCompleteness(self._text_score.lm,
                                                        sentence_ends=self._sentence_ends)
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
            # The conversation as the n-best rescoring reads it: the scorer keeps one
            # context computed, and the chat model judges the words as an answer to it.
            self._scored = (text, self._text_score.probability(
                text, list(self.conversation.history)))
        score = self._scored[1]
        return None if score is None else (score, partial.audio_seconds)

    def _process(self, block: np.ndarray) -> None:
        if not self._mic_open() and self._listening_turn is None:
            self.activity.reset()
            self.vad.reset()
            self._onset.reset()
            return
        self.activity.hear(block)
        if self._listening_turn is not None and self._text_score is not None:
            # A new partial is judged when it comes, not at the pause: the chat model's
            # judgement (~75 ms) would otherwise add to the dead air.
            self.partial_text()
        for probability in self.vad.probabilities(block):
            event = self.activity.update(probability)
            onset = self._onset.update(probability)
            if self._listening_turn is None:
                busy = self.conversation.state in PAUSABLE
                if event is VadEvent.SPEECH_START or (busy and onset is VadEvent.SPEECH_START):
                    self._start(busy, confirmed=event is VadEvent.SPEECH_START)
                continue
            if not self._confirmed:
                if event is VadEvent.SPEECH_START:
                    self._confirmed = True
                else:
                    self._unconfirmed_ms += 1000.0 * FRAME / RATE
                    if self._unconfirmed_ms >= CONFIRM_MS:
                        log.info("hands-free: no speech after the pause: the reply goes on")
                        turn = self._listening_turn
                        # Not paused after all (the bot had just finished): end the turn.
                        if not self.conversation.dismiss(turn) \
                                and turn is self.conversation.current_turn:
                            self.conversation.stop_listening()
                        self._listening_turn = None
                        self._onset.reset()
                    continue
            if event is VadEvent.SPEECH_END:
                log.info("hands-free: speech ended (P(finished) %s, text %s)",
                         getattr(self.activity, "last_probability", None),
                         getattr(self.activity, "last_text", None))
                if self._listening_turn is self.conversation.current_turn:
                    self.conversation.stop_listening()
                self._listening_turn = None
                self._onset.reset()

    def _start(self, busy: bool, confirmed: bool) -> None:
        """Speech: a turn, or over the bot a tentative one that pauses it."""
        log.info("hands-free: speech started%s", " over the bot: pausing it" if busy else "")
        self._listening_turn = self.conversation.start_listening(PREROLL_S, tentative=busy)
        self._confirmed, self._unconfirmed_ms = confirmed, 0.0
        self.turns_started += 1


def pause_onset() -> VoiceActivity:
    """The quick rule that pauses the bot: Silero's usual threshold, a shorter run, or one
    frame of ``PAUSE_SURE`` (module docstring)."""
    return VoiceActivity(start_ms=PAUSE_ONSET_MS, instant_threshold=PAUSE_SURE)
