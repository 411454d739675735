"""A conversation: push-to-talk turns from the microphone to the speaker (GUI-free).

One turn, as threads:

    caller (UI)        start_listening()  ...  stop_listening()
    turn thread        read mic -> recognizer.feed (partials) -> finish -> rescore
                       -> chat.stream -> clause splitter -> queue of clauses
    speech thread                              clause -> synthesizer.stream -> player

Each turn owns one cancel token (a ``threading.Event``). Barge-in (talking while the bot
thinks or speaks), ``stop()`` and ``close()`` set it and stop the player; every stage
checks it between units of work (a partial decode, a token, a clause, an audio chunk).

Hands-free barge-in is tentative (``start_listening(tentative=True)``): the user's voice
over the reply only *pauses* it (state PAUSED; the player plays silence, the reply's
generation and synthesis go on queueing) while a new turn records and recognises what
they said, unannounced to the listener. When its transcript is known the turn is settled:
no words, or only a backchannel (``voicebot.text.backchannel``: "mm-hmm", "yeah", "I
see"; in the final transcript or in the acoustically best hypothesis, since the n-gram
rescoring turns murmurs into words), and it is dropped (not in the history, not
answered; ``turn_dropped`` tells the listener) and the reply resumes where it paused;
real words cancel the reply, which is remembered as far as the user heard it (the
clauses that had started playing when it paused), and the new turn is announced and
answered. A pause is cheap and undone in milliseconds, so it can come on the first sign
of speech; only the interruption waits for words. The talk button, typed text and
stop() interrupt at once, paused or not.

The chat model does not wait for the final transcript: as soon as the recognizer has a
guess (its last partial transcript, once a quiet pause followed it; the user may still
hold the button) a reply starts on it (``pipeline/speculation.py``). More speech abandons
it; at the release it goes on beside the final decode, and is kept if the final
transcript has the same words, started again from it if not.

The microphone is only read between press and release, from a reader that starts at the
press, so in push-to-talk mode the bot never hears itself.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from voicebot.memory import trim_heap
from voicebot.pipeline.speculation import FirstClause, Speculation
from voicebot.pipeline.state import ALLOWED, TurnState
from voicebot.pipeline.timing import TurnTiming, now
from voicebot.text.backchannel import lets_reply_go_on

if TYPE_CHECKING:
    from voicebot.asr.recognizer import Recognizer
    from voicebot.lm.chat import ChatModel
    from voicebot.tts.base import AudioChunk, Synthesizer

log = logging.getLogger(__name__)

# Holding the talk button longer than this ends the utterance (endless audio is bounded).
MAX_UTTERANCE_S = 120.0
# How often the turn thread drains the microphone while the user talks.
MIC_POLL_S = 0.03
# How long close() waits for the workers in total.
CLOSE_TIMEOUT_S = 1.5
# How long a voice may take to finish the chunk it was speaking ahead for an abandoned
# guess (Piper's chunks: tens of ms) before the reply uses it again.
VOICE_IDLE_WAIT_S = 1.0


class Speaker(Protocol):
    """Where the reply's audio goes: ``voicebot.audio.player.Player`` on a device,
    ``voicebot.audio.memory_io.MemorySpeaker`` without one."""

    @property
    def first_sample_time(self) -> float | None: ...

    def play(self, chunk: np.ndarray, rate: float, last: bool = False) -> None: ...

    def finish(self) -> None: ...

    def stop(self, timeout: float = 0.05) -> bool: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    # Running totals in seconds: audio queued, and how much of it has been played.
    @property
    def written_s(self) -> float: ...

    @property
    def played_s(self) -> float: ...

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

    def turn_dropped(self, turn: Turn) -> None:
        """What the user said over a paused reply had no words or was only a backchannel
        (``turn.user_text``): the turn, never announced, is gone and the reply goes on."""

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
    # Where each clause's audio starts in the speaker's running total (``written_s``).
    clause_starts: list[float] = field(default_factory=list)
    error: str | None = None
    # Hands-free: a turn recorded over a paused reply, not announced until its words
    # show it is a real interruption (then False); ``dropped`` if they did not.
    tentative: bool = False
    dropped: bool = False
    # The clauses the user had heard (at least the start of) when the reply was paused or
    # interrupted: a voice faster than real time queues clauses ahead, and synthesis goes
    # on filling a paused player. None: not measured (all clauses sent to the voice count).
    heard_clauses: int | None = None
    # The reply started on the recognizer's guess (from a pause until it is taken at the
    # reply or abandoned; ``_finish`` abandons what is left), and what became of it:
    # "kept" or "restarted" (None: no guess).
    speculation: Speculation | None = None
    speculated: str | None = None
    # A kept speculation's first clause, spoken ahead: played instead of synthesised.
    first_clause: FirstClause | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    @property
    def remembered_reply(self) -> str:
        """The reply as the user got it: all of it, or after barge-in (or stop) only the
        clauses the user heard the start of (those that went to the voice where the
        speaker cannot tell), not the text the chat model or the voice made ahead."""
        if self.cancelled:
            spoken = self.spoken if self.heard_clauses is None else \
                self.spoken[:self.heard_clauses]
            return " ".join(clause.strip() for clause in spoken).strip()
        return self.reply_text.strip()

    def record(self) -> dict[str, Any]:
        """A plain-data summary for the saved history and exports."""
        return {
            "id": self.id, "source": self.source, "started_at": self.started_at,
            "user": self.user_text, "reply": self.reply_text, "cancelled": self.cancelled,
            "error": self.error, "timing_ms": self.timing.breakdown(),
            "alternatives": [_hypothesis_summary(h) for h in self.hypotheses],
        }


def _lets_reply_go_on(turn: Turn) -> bool:
    """No words or only a backchannel, in the final transcript or in the acoustically best
    hypothesis: the n-gram rescoring knows sentences, not murmurs, and put "in my mom."
    (acoustic score -4.80) before Whisper's "MMMM" (-4.13) through the virtual devices
    (2 runs of ~15), which would cut off the reply the user was only acknowledging."""
    texts = [turn.user_text]
    if turn.hypotheses:
        texts.append(max(turn.hypotheses, key=lambda h: h.acoustic_score).text)
    return any(lets_reply_go_on(text) for text in texts)


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
                 listener: ConversationListener | None = None, nbest: int = 5,
                 speculate: bool = True) -> None:
        """``mic`` is a 16 kHz ``RingBuffer`` filled by a running ``Capture``; without a
        recognizer and mic only typed turns are possible. A mic whose rate is not the
        recognizer's is refused here, where the two meet (the samples would be misheard,
        not rejected). ``speculate``: start the reply on the recognizer's guess before
        the final transcript (see the module docstring)."""
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
        self.speculate = speculate
        self.history: list[dict[str, str]] = []
        self.turns: list[Turn] = []
        self.state = TurnState.IDLE
        self._ids = itertools.count(1)
        self._lock = threading.RLock()  # guards state, the current turn and history
        self._asr_lock = threading.Lock()  # one utterance in the recognizer at a time
        self._current: Turn | None = None
        # The reply paused under a tentative turn, and the state its workers last asked
        # for (shown again if it resumes).
        self._paused: Turn | None = None
        self._paused_state = TurnState.IDLE
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def current_turn(self) -> Turn | None:
        return self._current

    # ----- commands (from the UI thread) ---------------------------------------------
    def start_listening(self, preroll_s: float = 0.0, tentative: bool = False) -> Turn:
        """Talk button pressed: interrupt whatever the bot is doing and listen.

        ``preroll_s`` includes that much audio from before the call (hands-free mode
        decides to listen only after the first syllables). ``tentative`` (hands-free):
        while the bot thinks or speaks, pause the reply instead and decide once the
        words are known (see the module docstring); otherwise the same as without."""
        if self.recognizer is None or self.mic is None:
            raise RuntimeError("no microphone or recognizer: only typed turns are possible")
        with self._lock:
            reply = self._current
            pausing = (tentative and reply is not None and self._paused is None
                       and not reply.finished.is_set()
                       and self.state in (TurnState.THINKING, TurnState.SPEAKING))
            if pausing:
                log.info("turn %d paused: the user speaks over it", reply.id)
                if self.player is not None:
                    self.player.pause()
                reply.heard_clauses = self._heard(reply)
                self._paused, self._paused_state = reply, self.state
                turn = self._new_turn("voice")
                turn.tentative = True  # announced only if it turns out to interrupt
            else:
                self._interrupt_current()
                turn = self._new_turn("voice")
                self.listener.turn_started(turn)
            reader = self.mic.reader()
            preroll = int(preroll_s * self.recognizer.sample_rate)
            reader.position = max(reader.position - preroll,
                                  self.mic.frames_written - self.mic.capacity, 0)
            self._set_state(TurnState.PAUSED if pausing else TurnState.LISTENING, turn)
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
            if not turn.tentative:  # a paused reply stays shown as paused until settled
                self._set_state(TurnState.RECOGNIZING, turn)

    def dismiss(self, turn: Turn) -> bool:
        """Hands-free: what paused the reply was not speech after all (the quick onset
        that paused it was not confirmed): forget the tentative turn, resume the reply.
        False if the turn is no longer a tentative one to dismiss."""
        with self._lock:
            if not turn.tentative or turn.dropped or turn is not self._current \
                    or turn.cancelled:
                return False
            log.info("turn %d: no speech after all", turn.id)
            self._drop(turn)
            turn.cancel.set()  # its worker stops reading the microphone
            turn.released.set()
        return True

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
        """Cancel the current turn and a reply paused under it; silence the player (which
        also ends its pause)."""
        interrupted = False
        paused, self._paused = self._paused, None
        current = self._current
        if paused is not None and current is not None and current.tentative:
            # The reply is the turn the user knows of (the tentative one was never
            # announced): current again, its end is reported as an interruption.
            self._current = paused
        for turn in (current, paused):
            if turn is not None and not turn.finished.is_set():
                log.info("turn %d interrupted", turn.id)
                if turn is not paused:  # a paused reply's was taken when it paused
                    turn.heard_clauses = self._heard(turn)
                turn.cancel.set()
                turn.released.set()
                interrupted = True
        if (interrupted or paused is not None) and self.player is not None:
            self.player.stop()

    def _heard(self, turn: Turn) -> int | None:
        """How many of the turn's clauses have started playing (None: unknown)."""
        played = getattr(self.player, "played_s", None)
        count = len(turn.spoken)  # read first: the speech thread appends starts first
        starts = turn.clause_starts[:count]
        if played is None or len(starts) < count:
            return None
        return sum(1 for start in starts if start < played)

    def _settle(self, turn: Turn) -> bool:
        """A tentative turn's transcript is known: True if it interrupts the paused reply
        (the reply is cancelled, the turn announced), False if it was dropped and the
        reply resumed (or the turn was cancelled meanwhile)."""
        if _lets_reply_go_on(turn):
            log.info("turn %d: %s over the reply: it goes on", turn.id,
                     "a backchannel" if turn.user_text.strip() else "no words")
            self._drop(turn)
            return False
        with self._lock:
            if turn.cancelled or self._current is not turn:
                return False
            reply, self._paused = self._paused, None
            turn.tentative = False
            if reply is not None and not reply.finished.is_set():
                log.info("turn %d interrupted by turn %d", reply.id, turn.id)
                reply.cancel.set()
                reply.released.set()
            if reply is not None and self.player is not None:
                self.player.stop()  # drops what was queued while paused, ends the pause
            self.listener.turn_started(turn)
        # The reply's history entry (what was heard) goes in as it ends, before this
        # turn's chat model reads the history; cancelled, it ends within a token or chunk.
        if reply is not None and not reply.finished.wait(CLOSE_TIMEOUT_S):
            log.warning("turn %d did not end in %.1f s after its interruption",
                        reply.id, CLOSE_TIMEOUT_S)
        return not turn.cancelled

    def _drop(self, turn: Turn) -> None:
        """Forget a tentative turn; if it is still the user's, resume the paused reply."""
        with self._lock:
            if turn.dropped:
                return
            turn.dropped = True
            if turn in self.turns:
                self.turns.remove(turn)
            if self._current is not turn or turn.cancelled:
                return  # superseded (talk button, typed text, stop): nothing to resume
            reply, self._paused = self._paused, None
            self._current = reply
            if reply is not None:
                reply.heard_clauses = None
                if self.player is not None:
                    self.player.resume()
            self._set_state(self._paused_state if reply is not None else TurnState.IDLE,
                            None)
            self.listener.turn_dropped(turn)

    def _set_state(self, state: TurnState, turn: Turn | None) -> None:
        with self._lock:
            if turn is not None and turn is self._paused:
                self._paused_state = state  # shown if the reply resumes
                return
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
                    if partial is not None and not turn.tentative:
                        self.listener.partial_transcript(turn, partial.text)
                turn.speculation = self._follow_guess(turn, turn.speculation)
                if fed >= max_samples and not released:
                    log.info("utterance reached %.0f s: ending it", MAX_UTTERANCE_S)
                    self.stop_listening()
                    continue
                if released:
                    break
            decoding = time.monotonic()
            hypotheses = self.recognizer.finish(self.nbest)
        rescoring = time.monotonic()
        if self.rescore is not None and hypotheses:
            hypotheses = self.rescore(hypotheses)
        log.debug("turn %d: final decode %.0f ms, rescoring %d hypotheses %.0f ms", turn.id,
                  (rescoring - decoding) * 1000, len(hypotheses),
                  (time.monotonic() - rescoring) * 1000)
        turn.hypotheses = list(hypotheses)
        turn.user_text = hypotheses[0].text.strip() if hypotheses else ""
        turn.timing.mark("final_transcript")
        if turn.tentative and not self._settle(turn):
            return False
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
            before = list(self.history)
        history = [*before, {"role": "user", "content": turn.user_text}]
        clauses: queue.Queue[str | None] = queue.Queue()
        speech = threading.Thread(target=self._speak, args=(turn, clauses),
                                  name=f"speech-{turn.id}", daemon=True)
        with self._lock:
            self._threads.append(speech)
        speech.start()
        splitter = self.splitter_factory()
        pieces = self._reply_pieces(turn, before, history)
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

    def _follow_guess(self, turn: Turn, speculation: Speculation | None
                      ) -> Speculation | None:
        """Keep a reply going on the recognizer's current guess of the transcript: start
        one when a guess appears, abandon it when the guess changes or is gone (the user
        spoke again). Not for tentative turns (a murmur over the reply is not answered)."""
        guess = getattr(self.recognizer, "guess", None)
        if not self.speculate or guess is None or turn.tentative:
            return None
        text = (guess() or "").strip()
        if speculation is not None and not (text and speculation.agrees(text)):
            speculation.abandon()
            speculation = None
        if speculation is None and text:
            with self._lock:
                history = [*self.history, {"role": "user", "content": text}]
            # Spoken ahead only where someone will hear it.
            voice = self.synthesizer if self.player is not None else None
            speculation = Speculation(
                self.chat, history, text, turn.cancel, voice=voice,
                splitter=self.splitter_factory() if voice is not None else None)
        return speculation

    def _reply_pieces(self, turn: Turn, before: list[dict[str, str]],
                      history: list[dict[str, str]]) -> Iterable[str]:
        """The reply started on the guess if the final transcript agrees with it (and the
        history it read is still the history), else a new one from ``history``."""
        speculation, turn.speculation = turn.speculation, None
        if speculation is not None:
            if speculation.agrees(turn.user_text) and speculation.history[:-1] == before:
                turn.speculated = "kept"
                turn.first_clause = speculation.take()
                return speculation.pieces()
            log.info("turn %d: heard %r, not the guess %r: the reply starts again",
                     turn.id, turn.user_text, speculation.guess)
            speculation.abandon()
            # The voice finishes its chunk before the restarted reply uses it.
            speculation.wait_voice_idle(VOICE_IDLE_WAIT_S)
            turn.speculated = "restarted"
        return self.chat.stream(history, turn.cancel)

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
                turn.clause_starts.append(getattr(self.player, "written_s", 0.0))
                turn.spoken.append(clause)
                for chunk in self._clause_audio(turn, clause):
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
            if not turn.cancelled:  # paused before its first sound: stamped since
                self._note_first_sample(turn)
        except Exception as exc:
            self._fail(turn, exc)
            turn.cancel.set()  # the chat model should stop too: nobody will hear it

    def _clause_audio(self, turn: Turn, clause: str) -> Iterator[AudioChunk]:
        """The clause's audio: spoken ahead by a kept speculation when it is that clause
        (the same splitter cut both), otherwise synthesised now."""
        first, turn.first_clause = turn.first_clause, None
        if first is not None:
            if first.text == clause:
                return first.chunks()
            first.discard(VOICE_IDLE_WAIT_S)  # one voice, one synthesis at a time
        return self.synthesizer.stream(clause, turn.cancel, split_first=False)

    def _note_first_sample(self, turn: Turn) -> None:
        first = self.player.first_sample_time
        if first is not None:
            turn.timing.mark("first_played", at=first)

    def _fail(self, turn: Turn, exc: Exception) -> None:
        log.exception("turn %d failed", turn.id)
        turn.error = f"{type(exc).__name__}: {exc}"
        # A tentative turn was never announced: the error is the session's, not a turn's.
        self.listener.error(None if turn.tentative else turn, turn.error)

    def _finish(self, turn: Turn) -> None:
        if turn.speculation is not None:  # the turn ended before its reply began
            turn.speculation.abandon()
            turn.speculation = None
        if turn.first_clause is not None:  # spoken ahead, never played (cancelled)
            turn.first_clause.discard(VOICE_IDLE_WAIT_S)
            turn.first_clause = None
        if turn.tentative:  # never announced: cancelled, failed or dropped while recorded
            try:
                self._drop(turn)
            finally:
                turn.finished.set()
            return
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
