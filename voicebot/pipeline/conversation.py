"""A conversation: push-to-talk turns from the microphone to the speaker (GUI-free).

One turn, as threads:

    caller (UI)        start_listening()  ...  stop_listening()
    turn thread        read mic -> recognizer.feed (partials) -> finish -> rescore
                       -> chat.stream -> clause splitter -> queue of clauses
    speech thread                              clause -> synthesizer.stream -> player

Each turn owns one cancel token (a ``threading.Event``). Barge-in (talking while the bot
thinks or speaks), ``stop()`` and ``close()`` set it and stop the player; every stage
checks it between units of work (a partial decode, a token, a clause, an audio chunk).

The microphone is only read between press and release, from a reader that starts at the
press, so in push-to-talk mode the bot never hears itself.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from voicebot.memory import trim_heap
from voicebot.pipeline.state import ALLOWED, TurnState
from voicebot.pipeline.timing import TurnTiming, now

if TYPE_CHECKING:
    from voicebot.asr.recognizer import Recognizer
    from voicebot.lm.chat import ChatModel
    from voicebot.tts.base import Synthesizer

log = logging.getLogger(__name__)

# Holding the talk button longer than this ends the utterance (endless audio is bounded).
MAX_UTTERANCE_S = 120.0
# How often the turn thread drains the microphone while the user talks.
MIC_POLL_S = 0.03
# How long close() waits for the workers in total.
CLOSE_TIMEOUT_S = 1.5


class Speaker(Protocol):
    """Where the reply's audio goes: ``voicebot.audio.player.Player`` on a device,
    ``voicebot.audio.memory_io.MemorySpeaker`` without one."""

    @property
    def first_sample_time(self) -> float | None: ...

    def play(self, chunk: np.ndarray, rate: float, last: bool = False) -> None: ...

    def finish(self) -> None: ...

    def stop(self, timeout: float = 0.05) -> bool: ...

    def wait_done(self, timeout: float | None = None) -> bool: ...

    def wait_first_sample(self, timeout: float | None = None) -> float | None: ...


class MicrophoneBuffer(Protocol):
    """A ring buffer of 16 kHz samples (``voicebot.audio.ring_buffer.RingBuffer``)."""

    capacity: int
    sample_rate: int | None  # checked against the recognizer's where they meet

    @property
    def frames_written(self) -> int: ...

    def reader(self) -> Any: ...


class ClauseSplitter(Protocol):
    """Turns streamed text into speakable pieces (see voicebot.lm.speech_shaping)."""

    def push(self, text: str) -> list[str]: ...

    def flush(self) -> list[str]: ...


class ConversationListener:
    """What the conversation reports. Called from worker threads: a GUI adapter must hand
    the calls over to its own thread. The default implementation ignores everything."""

    def state_changed(self, state: TurnState) -> None: ...

    def turn_started(self, turn: Turn) -> None:
        """A new turn (spoken or typed) began; called before its first state change."""

    def partial_transcript(self, turn: Turn, text: str) -> None: ...

    def final_transcript(self, turn: Turn) -> None: ...

    def reply_text(self, turn: Turn, piece: str) -> None: ...

    def turn_finished(self, turn: Turn) -> None: ...

    def error(self, turn: Turn | None, message: str) -> None: ...


@dataclass
class Turn:
    id: int
    source: str  # "voice" or "text"
    cancel: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    timing: TurnTiming = field(default_factory=TurnTiming)
    started_at: float = field(default_factory=time.time)  # wall clock, for the history
    user_text: str = ""
    hypotheses: list[Any] = field(default_factory=list)  # asr Hypothesis objects
    reply_text: str = ""
    spoken: list[str] = field(default_factory=list)  # the clauses sent to the voice
    error: str | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    @property
    def remembered_reply(self) -> str:
        """The reply as the user got it: all of it, or after barge-in (or stop) only the
        clauses that went to the voice, not the text the chat model generated ahead."""
        if self.cancelled:
            return " ".join(clause.strip() for clause in self.spoken).strip()
        return self.reply_text.strip()

    def record(self) -> dict[str, Any]:
        """A plain-data summary for the saved history and exports."""
        return {
            "id": self.id, "source": self.source, "started_at": self.started_at,
            "user": self.user_text, "reply": self.reply_text, "cancelled": self.cancelled,
            "error": self.error, "timing_ms": self.timing.breakdown(),
            "alternatives": [_hypothesis_summary(h) for h in self.hypotheses],
        }


def _hypothesis_summary(hypothesis: Any) -> dict[str, Any]:
    summary = {"text": hypothesis.text, "acoustic_score": hypothesis.acoustic_score}
    for name in ("lm_score", "total_score"):
        value = getattr(hypothesis, name, None)
        if value is not None:
            summary[name] = value
    return summary


class Conversation:
    def __init__(self, *, chat: ChatModel, synthesizer: Synthesizer | None,
                 player: Speaker | None, splitter_factory: Callable[[], ClauseSplitter],
                 recognizer: Recognizer | None = None, mic: MicrophoneBuffer | None = None,
                 rescore: Callable[[list[Any]], list[Any]] | None = None,
                 listener: ConversationListener | None = None, nbest: int = 5) -> None:
        """``mic`` is a 16 kHz ``RingBuffer`` filled by a running ``Capture``; without a
        recognizer and mic only typed turns are possible. A mic whose rate is not the
        recognizer's is refused here, where the two meet (the samples would be misheard,
        not rejected)."""
        mic_rate = getattr(mic, "sample_rate", None)
        if recognizer is not None and mic_rate is not None \
                and mic_rate != recognizer.sample_rate:
            raise ValueError(f"the microphone ring holds {mic_rate} Hz audio but the "
                             f"recognizer expects {recognizer.sample_rate} Hz")
        self.chat = chat
        self.synthesizer = synthesizer
        self.player = player
        self.recognizer = recognizer
        self.mic = mic
        self.rescore = rescore
        self.splitter_factory = splitter_factory
        self.listener = listener or ConversationListener()
        self.nbest = nbest
        self.history: list[dict[str, str]] = []
        self.turns: list[Turn] = []
        self.state = TurnState.IDLE
        self._ids = itertools.count(1)
        self._lock = threading.RLock()  # guards state, the current turn and history
        self._asr_lock = threading.Lock()  # one utterance in the recognizer at a time
        self._current: Turn | None = None
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def current_turn(self) -> Turn | None:
        return self._current

    # ----- commands (from the UI thread) ---------------------------------------------
    def start_listening(self, preroll_s: float = 0.0) -> Turn:
        """Talk button pressed: interrupt whatever the bot is doing and listen.

        ``preroll_s`` includes that much audio from before the call (hands-free mode
        decides to listen only after the first syllables)."""
        if self.recognizer is None or self.mic is None:
            raise RuntimeError("no microphone or recognizer: only typed turns are possible")
        with self._lock:
            self._interrupt_current()
            turn = self._new_turn("voice")
            self.listener.turn_started(turn)
            reader = self.mic.reader()
            preroll = int(preroll_s * self.recognizer.sample_rate)
            reader.position = max(reader.position - preroll,
                                  self.mic.frames_written - self.mic.capacity, 0)
            self._set_state(TurnState.LISTENING, turn)
            self._start_thread(self._run_voice_turn, turn, reader, name=f"turn-{turn.id}")
        return turn

    def stop_listening(self) -> None:
        """Talk button released: the utterance is complete."""
        with self._lock:
            turn = self._current
            if turn is None or turn.source != "voice" or turn.released.is_set():
                return
            turn.timing.mark("ptt_release")
            turn.released.set()
            self._set_state(TurnState.RECOGNIZING, turn)

    def submit_text(self, text: str) -> Turn | None:
        """Typed fallback: a turn that starts from text. Blank text is ignored."""
        text = " ".join(text.split())
        if not text:
            return None
        with self._lock:
            self._interrupt_current()
            turn = self._new_turn("text")
            turn.user_text = text
            self.listener.turn_started(turn)
            self._set_state(TurnState.THINKING, turn)
            self._start_thread(self._run_text_turn, turn, name=f"turn-{turn.id}")
        return turn

    def stop(self) -> None:
        """The stop button: silence the bot and cancel the turn, keep the conversation."""
        with self._lock:
            self._interrupt_current()
            self._set_state(TurnState.IDLE, None)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Cancel everything and wait (bounded) for the workers; True if all ended."""
        with self._lock:
            self._closed = True
            self._interrupt_current()
        deadline = now() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - now()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("workers still running after close: %s", ", ".join(alive))
        return not alive

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the current turn (if any) has finished."""
        turn = self._current
        return True if turn is None else turn.finished.wait(timeout)

    # ----- internals --------------------------------------------------------------
    def _new_turn(self, source: str) -> Turn:
        if self._closed:
            raise RuntimeError("the conversation is closed")
        turn = Turn(id=next(self._ids), source=source)
        self._current = turn
        self.turns.append(turn)
        return turn

    def _interrupt_current(self) -> None:
        turn = self._current
        if turn is not None and not turn.finished.is_set():
            log.info("turn %d interrupted", turn.id)
            turn.cancel.set()
            turn.released.set()
            if self.player is not None:
                self.player.stop()

    def _set_state(self, state: TurnState, turn: Turn | None) -> None:
        with self._lock:
            if turn is not None and turn is not self._current:
                return  # a cancelled turn's worker must not move the new turn's state
            if state is self.state:
                return
            if state not in ALLOWED[self.state]:
                log.error("unexpected state change %s -> %s", self.state.value, state.value)
            self.state = state
        self.listener.state_changed(state)

    def _start_thread(self, target: Callable, *args: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _run_voice_turn(self, turn: Turn, reader: Any) -> None:
        try:
            if self._recognize(turn, reader) and not turn.cancelled:
                self._reply(turn)
        except Exception as exc:  # a broken engine ends the turn, never the app
            self._fail(turn, exc)
        finally:
            self._finish(turn)

    def _run_text_turn(self, turn: Turn) -> None:
        try:
            self._reply(turn)
        except Exception as exc:
            self._fail(turn, exc)
        finally:
            self._finish(turn)

    def _recognize(self, turn: Turn, reader: Any) -> bool:
        """Feed the microphone to the recognizer until release; False if nothing heard."""
        max_samples = int(MAX_UTTERANCE_S * self.recognizer.sample_rate)
        fed = 0
        with self._asr_lock:
            self.recognizer.reset()
            while True:
                released = turn.released.wait(MIC_POLL_S)
                if turn.cancelled:
                    self.recognizer.reset()
                    return False
                block = reader.read()
                if len(block):
                    fed += len(block)
                    partial = self.recognizer.feed(np.asarray(block, dtype=np.float32))
                    if partial is not None:
                        self.listener.partial_transcript(turn, partial.text)
                if fed >= max_samples and not released:
                    log.info("utterance reached %.0f s: ending it", MAX_UTTERANCE_S)
                    self.stop_listening()
                    continue
                if released:
                    break
            hypotheses = self.recognizer.finish(self.nbest)
        if self.rescore is not None and hypotheses:
            hypotheses = self.rescore(hypotheses)
        turn.hypotheses = list(hypotheses)
        turn.user_text = hypotheses[0].text.strip() if hypotheses else ""
        turn.timing.mark("final_transcript")
        self.listener.final_transcript(turn)
        if not turn.user_text:
            log.info("turn %d: nothing recognised", turn.id)
            return False
        self._set_state(TurnState.THINKING, turn)
        return True

    def _reply(self, turn: Turn) -> None:
        if turn.source == "text":
            turn.timing.mark("final_transcript")
        with self._lock:
            history = [*self.history, {"role": "user", "content": turn.user_text}]
        clauses: queue.Queue[str | None] = queue.Queue()
        speech = threading.Thread(target=self._speak, args=(turn, clauses),
                                  name=f"speech-{turn.id}", daemon=True)
        with self._lock:
            self._threads.append(speech)
        speech.start()
        splitter = self.splitter_factory()
        pieces = self.chat.stream(history, turn.cancel)
        try:
            for piece in pieces:
                if turn.cancelled:
                    break
                turn.timing.mark("first_token")
                turn.reply_text += piece
                self.listener.reply_text(turn, piece)
                self._send_clauses(turn, splitter.push(piece), clauses)
            if not turn.cancelled:
                self._send_clauses(turn, splitter.flush(), clauses)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:  # a cancelled reply stops generating now, not at GC
                close()
            clauses.put(None)
            speech.join()
        # A reply cut short by barge-in is remembered as far as it was spoken.
        remembered = turn.remembered_reply if self.player is not None else \
            turn.reply_text.strip()
        with self._lock:
            if remembered:
                self.history += [{"role": "user", "content": turn.user_text},
                                 {"role": "assistant", "content": remembered}]

    def _send_clauses(self, turn: Turn, pieces: Iterable[str], clauses: queue.Queue) -> None:
        for clause in pieces:
            if clause.strip():
                turn.timing.mark("first_clause")
                clauses.put(clause)

    def _speak(self, turn: Turn, clauses: queue.Queue) -> None:
        """Synthesize clauses as they come and play them; runs beside the chat model.

        Without an output device (``player`` None) replies are text only."""
        try:
            while True:
                clause = clauses.get()
                if clause is None or turn.cancelled:
                    break
                if self.player is None:
                    continue
                # The splitter already cut the clause (the first one short, for a quick
                # start): the voice only normalises and speaks it.
                turn.spoken.append(clause)
                for chunk in self.synthesizer.stream(clause, turn.cancel, split_first=False):
                    if turn.cancelled:
                        break
                    turn.timing.mark("first_audio")
                    self._set_state(TurnState.SPEAKING, turn)
                    self.player.play(chunk.samples, chunk.sample_rate)
                    self._note_first_sample(turn)
            if turn.cancelled or self.player is None:
                return
            self.player.finish()
            first = self.player.wait_first_sample(timeout=2.0)
            if first is not None:
                turn.timing.mark("first_played", at=first)
            while not turn.cancelled and not self.player.wait_done(timeout=0.05):
                pass
        except Exception as exc:
            self._fail(turn, exc)
            turn.cancel.set()  # the chat model should stop too: nobody will hear it

    def _note_first_sample(self, turn: Turn) -> None:
        first = self.player.first_sample_time
        if first is not None:
            turn.timing.mark("first_played", at=first)

    def _fail(self, turn: Turn, exc: Exception) -> None:
        log.exception("turn %d failed", turn.id)
        turn.error = f"{type(exc).__name__}: {exc}"
        self.listener.error(turn, turn.error)

    def _finish(self, turn: Turn) -> None:
        turn.timing.mark("reply_done")
        try:
            self._set_state(TurnState.IDLE, turn)
            self.listener.turn_finished(turn)
        finally:
            # Set last: whoever waits for it finds the turn reported (saved, shown).
            turn.finished.set()
        # Each stage's freed buffers (Whisper's decoder steps, the voice's windows) stay
        # resident in glibc's per-thread heaps; left there, they pile up turn after turn
        # (bench turn: ~+250 MB over 8 turns). Giving them back now, while the user
        # reads the reply, costs a few ms and bounds the process's peak.
        trim_heap()
