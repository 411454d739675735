"""A running conversation with everything around it, GUI-free: the ``Session``.

It owns the engines (loaded in a thread, see ``voicebot.pipeline.session``), the audio
ends (microphone and speaker, ``voicebot.pipeline.audio_ends``), the ``Conversation``,
hands-free listening, the saved history and what the window shows (one
``display_state.Shown`` at a time). The Conversation tab is a view over it; ``bench
turn``, the self-test and the tests drive the same object.

Threads: commands come from one owner thread (the GUI thread in the app). Listener
callbacks come from worker threads; a GUI adapter hands them to its own thread.
Results of background work that change the session (engines loaded, a voice loaded, a
lost device to reopen) are handed to the owner thread through ``post``: the app passes
a function that queues a call on the GUI thread; without one they run where they finish.

``close(timeout)`` is bounded: the conversation's workers, the hands-free monitor and
the device closers are all joined within it. Engine loads cannot be interrupted (a model
being read): they run on daemon threads and their result is dropped after ``close``.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from voicebot.pipeline.audio_ends import AudioEnds, open_devices
from voicebot.pipeline.conversation import Conversation, Turn
from voicebot.pipeline.display_state import TURN_PHASE, Phase, shown, timing_text
from voicebot.pipeline.history import load_history, messages_from_history, save_history
from voicebot.pipeline.session import ROLES, Engines, model_settings, reload_roles, settle_settings
from voicebot.pipeline.session_events import ConversationEvents, SessionListener
from voicebot.pipeline.state import TurnState
from voicebot.settings import Settings

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 1.5
RECOVER_AFTER_S = 1.0  # a lost device is reopened after this pause
RECOVER_TRIES = 3  # quick tries, RECOVER_AFTER_S apart; then one every RECOVER_POLL_S
RECOVER_POLL_S = 3.0


class Session:
    def __init__(self, settings: Settings, listener: SessionListener | None = None, *,
                 post: Callable[[Callable[[], None]], None] | None = None,
                 loads_models: bool = True, persist: bool = True,
                 vad: Any = None) -> None:
        """``loads_models``: False when the engines are always handed in (``start``);
        ``persist``: read and write the saved history, save settings that had to change
        (False: bench, tests: the user's files are left alone);
        ``vad``: the hands-free voice activity detector (None: Silero)."""
        self.settings = settings
        self.listener = listener or SessionListener()
        self._post = post or (lambda call: call())
        self.loads_models = loads_models
        self.persist = persist
        self.vad = vad
        self.engines: Engines | None = None
        self.conversation: Conversation | None = None
        self.audio = AudioEnds()
        self.hands_free: Any = None
        self.saved_turns: list[dict[str, Any]] = load_history() if persist else []
        self.shown = shown(Phase.LOADING)
        self._lock = threading.RLock()  # guards the phase and what is shown
        self._turn: Turn | None = None  # the current (or last) turn, for its timing
        self._talking = False
        self._closing = False
        self._generation = 0  # of engine loads: only the newest is used
        self._loaded_from = model_settings(self.settings)
        self._recovery: threading.Thread | None = None
        self._recover_tries = 0
        self._lost_message = ""
        self._on_screen = True  # the view says when the conversation is out of sight
        # Push-to-talk on screen: the streams rest this long after the last thing that
        # happened (a turn, the view shown); 0 keeps them open.
        self.rest_after_s = settings.audio.rest_after_s
        self._rest_timer: threading.Timer | None = None
        log.info("session: started (hands-free %s, history %s)",
                 "on" if settings.audio.hands_free else "off",
                 f"{len(self.saved_turns)} turns" if persist else "not kept")

    # ----- what can be done now -------------------------------------------------------
    @property
    def can_type(self) -> bool:
        return self.conversation is not None

    @property
    def can_talk(self) -> bool:
        return self.conversation is not None and self.conversation.recognizer is not None

    @property
    def capture(self) -> Any:
        """The running Capture (for level meters), or None."""
        return self.audio.capture

    def start_hands_free(self, headset: bool = False) -> Any:
        """Let voice activity start and end turns (``headset``: speaking interrupts the
        bot too); the monitor, or None without a microphone and recognizer."""
        from voicebot.audio.turn_end import TurnEndPolicy
        from voicebot.pipeline.hands_free import HandsFree

        if not self.can_talk:
            return None
        if self.hands_free is not None:
            self.hands_free.stop()
        # With the echo cancelled the bot cannot hear itself: listen while it speaks.
        self.hands_free = HandsFree(self.conversation, self.audio.mic, vad=self.vad,
                                    headset=headset or self.audio.echo_cancelling,
                                    turn_end=TurnEndPolicy.from_settings(self.settings.audio),
                                    sentence_ends=getattr(self.engines, "scorer", None)
                                    ).start()
        self._show_idle("")
        return self.hands_free

    # ----- engines ------------------------------------------------------------------------
    def load(self, roles: tuple[str, ...] | None = None) -> None:
        """Load the engines (``roles``: only those, keeping the others) in a thread, then
        ``start`` with them on the owner thread."""
        from voicebot.pipeline.session import load_engines

        self._generation += 1
        generation, previous = self._generation, self.engines if roles else None
        settings = copy.deepcopy(self.settings)  # the owner may change it meanwhile
        self._show(Phase.LOADING)

        def run() -> None:
            try:
                engines = load_engines(settings, progress=self._loading, roles=roles or ROLES,
                                       previous=previous, strict=False)
            except Exception as exc:  # shown to the user; the app keeps running
                log.exception("session: loading the models failed")
                message = f"{type(exc).__name__}: {exc}"
                self._post(lambda: self._load_failed(message, generation))
                return
            self._post(lambda: self._loaded(engines, generation, roles))

        threading.Thread(target=run, name="load-engines", daemon=True).start()

    def _loading(self, step: str) -> None:
        if step != "ready":
            self._show(Phase.LOADING, detail=step)

    def _loaded(self, engines: Engines, generation: int, roles: tuple[str, ...] | None) -> None:
        if generation != self._generation or self._closing:
            return  # the settings changed again while loading: only the newest counts
        if roles and "voice" not in roles and self.engines is not None:
            # A voice switched while these loaded (request_voice) is the one to keep.
            engines.synthesizer, engines.voice = self.engines.synthesizer, self.engines.voice
        self.start(engines)

    def _load_failed(self, message: str, generation: int) -> None:
        if generation == self._generation and not self._closing:
            self.listener.notice(f"Could not load the models: {message}")
            self._show(Phase.ERROR, detail=f"could not load the models: {message}")

    def start(self, engines: Engines, audio: AudioEnds | None = None) -> None:
        """Use ``engines``: open the audio devices (or use ``audio``), start the
        conversation (and hands-free listening)."""
        if self._closing:
            return
        self._stop_conversation()
        self.engines = engines
        self._log_engines(engines)
        self._settle_settings(engines)
        if audio is None:
            audio = self.audio if self.audio.mic or self.audio.speaker else \
                open_devices(self.settings, on_lost=self._device_lost)
        elif audio is not self.audio:
            self.audio.close()
        self.audio = audio
        self._start_conversation()
        self.listener.notice(engines.message())
        if self.conversation is None:
            self._show(Phase.ERROR, detail="the bot cannot answer without a chat model.")
        else:
            self._show(self._idle_phase(), detail="; ".join(audio.problems))
        self._sync_audio(woken=True)  # idle from here: the rest timer starts
        self.listener.engines_ready(engines)

    def _start_conversation(self) -> None:
        from voicebot.pipeline.session import build_conversation

        if self.engines is None or self.engines.chat is None:
            self.conversation = None
            return
        self.conversation = build_conversation(
            self.settings, self.engines, player=self.audio.speaker, mic=self.audio.mic,
            listener=ConversationEvents(self))
        self.conversation.history = messages_from_history(self.saved_turns)
        if self.settings.audio.hands_free:
            self.start_hands_free(self.settings.audio.headset_mode)
        log.info("session: conversation ready (microphone %s, speaker %s, hands-free %s)",
                 "yes" if self.conversation.mic is not None else "no",
                 "yes" if self.conversation.player is not None else "no",
                 "on" if self.hands_free else "off")

    @staticmethod
    def _log_engines(engines: Engines) -> None:
        loaded = [role for role in ROLES if getattr(engines, "synthesizer" if role == "voice"
                                                    else role, None) is not None]
        log.info("session: engines in use: %s%s", ", ".join(loaded) or "none",
                 f" (voice {engines.voice})" if engines.voice else "")
        for role, problem in engines.problems.items():
            log.info("session: engine %s failed: %s", role, problem)

    def _settle_settings(self, engines: Engines) -> None:
        """Make the settings say what really runs (``session.settle_settings``), and save
        them if that changed."""
        changed = settle_settings(self.settings, engines, self._loaded_from)
        self._loaded_from = model_settings(self.settings)
        if changed:
            self._save_settings()

    def _save_settings(self) -> None:
        from voicebot.settings import save_settings

        if not self.persist:
            return
        try:
            save_settings(self.settings)
        except OSError as exc:
            log.warning("could not save the settings: %s", exc)

    # ----- changing the voice and the settings ------------------------------------------
    def request_voice(self, voice: str) -> None:
        """Load ``voice`` beside the running conversation; it speaks (and is saved in the
        settings) only once it has loaded. ``listener.voice_changed`` tells the outcome."""
        from voicebot.pipeline.session import load_synthesizer, one_line

        if self._closing:
            return
        if self.engines is None:
            # The start-up load reads the settings' voice when it gets there; a switch
            # now would race it.
            self.listener.voice_changed(voice, False, "The models are still loading; "
                                                      "choose the voice again in a moment.")
            return

        def run() -> None:
            try:
                synthesizer = load_synthesizer(voice)
            except Exception as exc:  # a broken voice must never reach the conversation
                log.exception("session: loading the voice %s failed", voice)
                reason = one_line(exc, voice)
                self._post(lambda: self._voice_failed(voice, reason))
                return
            self._post(lambda: self._voice_loaded(voice, synthesizer))

        threading.Thread(target=run, name="load-voice", daemon=True).start()

    def _voice_loaded(self, voice: str, synthesizer: Any) -> None:
        from voicebot.pipeline.session import voice_label

        if self._closing or self.engines is None:
            return
        had_voice = self.engines.synthesizer is not None
        self.engines.synthesizer, self.engines.voice = synthesizer, voice
        self.engines.problems.pop("voice", None)
        self.settings.tts.voice = voice
        self._loaded_from = model_settings(self.settings)
        self._save_settings()
        if self.conversation is not None:
            if had_voice:
                self.conversation.synthesizer = synthesizer  # the next clause uses it
            else:  # replies were text only: rebuild with the speaker
                self._stop_conversation()
                self._start_conversation()
        message = f"The bot now speaks with the voice {voice_label(voice)}."
        log.info("session: voice %s in use", voice)
        self.listener.notice(self.engines.message())
        self._show_idle(message)
        self.listener.voice_changed(voice, True, message)

    def _voice_failed(self, voice: str, reason: str) -> None:
        from voicebot.pipeline.session import voice_label

        speaking = self.engines is not None and self.engines.synthesizer is not None
        message = (f"The voice {voice_label(voice)} could not be loaded ({reason}); "
                   + ("the previous voice keeps speaking." if speaking else
                      "the voice setting is unchanged."))
        self.listener.notice(message)
        self.listener.voice_changed(voice, False, message)

    def apply_settings(self, settings: Settings, voice: str | None = None) -> None:
        """Use new settings: reload the engines whose settings changed (keeping the
        others), reopen the audio devices. ``voice``: a voice to switch to, loaded
        beside the conversation (``request_voice``)."""
        self.settings = settings
        roles = reload_roles(settings, self._loaded_from)
        if voice is not None and self.engines is not None and voice == self.engines.voice:
            voice = None  # already speaking
        self._close_audio_and_conversation(CLOSE_TIMEOUT_S)
        if self.loads_models and (roles or self.engines is None):
            self.load(roles if self.engines is not None else None)
        elif self.engines is not None:
            self.start(self.engines)
        if voice is not None:
            self.request_voice(voice)

    # ----- turns ------------------------------------------------------------------------
    def start_listening(self) -> Turn | None:
        """Push-to-talk pressed; None when there is nothing to listen with."""
        with self._lock:  # the rest timer's check sees the button held
            if not self.can_talk or self._talking:
                return None
            self._talking = True
            self._resume_audio()
        return self.conversation.start_listening()

    def stop_listening(self) -> None:
        """Push-to-talk released."""
        if self._talking and self.conversation is not None:
            self._talking = False
            self.conversation.stop_listening()

    def submit_text(self, text: str) -> Turn | None:
        if self.conversation is None:
            return None
        self._resume_audio()
        return self.conversation.submit_text(text)

    # ----- idle audio ---------------------------------------------------------------------
    def set_on_screen(self, on_screen: bool) -> None:
        """The view is (not) visible. Out of sight and idle in push-to-talk mode, the
        audio streams are suspended (``AudioEnds.suspend``); shown again, or when a turn
        starts, they resume. Hands-free keeps listening: it is meant to work unseen."""
        self._on_screen = on_screen
        self._sync_audio(woken=True)

    def _sync_audio(self, woken: bool = False, timer: threading.Timer | None = None) -> None:
        """Suspend or resume the streams for what is happening now. ``woken``: a turn
        ended or the view was shown (the rest timer starts again); ``timer``: the rest
        timer that ran out (see ``_start_rest_timer``)."""
        with self._lock:
            conversation = self.conversation
            idle = (conversation is None or conversation.state is TurnState.IDLE) \
                and not self._talking
            rest_due = timer is not None and timer is self._rest_timer and not woken
            resting = not self._on_screen or rest_due
            if resting and idle and self.hands_free is None and not self._closing:
                if not self.audio.suspended and (self.audio.capture or self.audio.speaker):
                    self.audio.suspend()
                    log.info("session: audio suspended (%s)", "out of sight"
                             if not self._on_screen else "push-to-talk, idle")
                return
            self._resume_audio()
            if idle and woken:
                self._start_rest_timer()

    def _start_rest_timer(self) -> None:
        """Push-to-talk on screen: the streams rest ``rest_after_s`` after the last turn
        ended or the view was shown. An open microphone and speaker cost about 7% of a
        core here doing nothing (`voicebot bench idle`); reopened when the button is
        pressed or text is sent (~10 ms on PulseAudio), they lose nothing that would be
        heard, since push-to-talk only records from the press. What rests is the live
        view of the microphone between turns."""
        if self._rest_timer is not None:
            self._rest_timer.cancel()
            self._rest_timer = None
        if self.rest_after_s <= 0 or self._closing:
            return
        timer = threading.Timer(self.rest_after_s,
                                lambda: self._post(lambda: self._sync_audio(timer=timer)))
        timer.daemon = True
        timer.name = "audio-rest"
        self._rest_timer = timer
        timer.start()

    def _resume_audio(self) -> None:
        if not self.audio.suspended:
            return
        from voicebot.audio.devices import AudioDeviceError

        try:
            self.audio.resume()
            log.info("session: audio resumed")
        except AudioDeviceError as exc:
            self._device_lost(exc)

    def stop(self) -> None:
        """Silence the bot and cancel the turn; the conversation goes on."""
        if self.conversation is not None:
            self.conversation.stop()

    def clear_history(self) -> None:
        self.saved_turns = []
        if self.conversation is not None:
            self.conversation.history = []
        if self.persist:
            save_history(self.saved_turns)

    def _turn_finished(self, turn: Turn) -> None:
        breakdown = turn.timing.breakdown()
        # Counts, not the words: the log file is for diagnosis, not a second history.
        log.info("session: turn %d (%s) %s: %d words in, %d characters out; %s", turn.id,
                 turn.source,
                 "failed" if turn.error else "interrupted" if turn.cancelled else "done",
                 len(turn.user_text.split()), len(turn.reply_text.strip()),
                 timing_text(breakdown) or "no timing")
        if turn.user_text:
            self.saved_turns.append(turn.record())
            if self.persist:
                try:
                    save_history(self.saved_turns)
                except OSError as exc:
                    log.warning("could not save the history: %s", exc)
        # Now idle: out of sight the streams rest at once, on screen after a while.
        self._post(lambda: self._sync_audio(woken=True))
        conversation = self.conversation
        with self._lock:
            if conversation is None or turn is not conversation.current_turn \
                    or conversation.state is not TurnState.IDLE:
                return  # talked over: the new turn's state is showing
            if turn.error:
                self._show(Phase.ERROR, detail=turn.error)
            elif turn.cancelled:
                self._show(Phase.INTERRUPTED)
            else:
                self._show(self._idle_phase())

    # ----- what is shown -------------------------------------------------------------
    def _idle_phase(self) -> Phase:
        return Phase.WAITING if self.hands_free is not None else Phase.READY

    def _show_turn_state(self, state: TurnState) -> None:
        with self._lock:
            # The conversation's state now, not the one reported: reports from two
            # threads (a finishing turn, a new one) may arrive out of order.
            conversation = self.conversation
            state = conversation.state if conversation is not None else state
            self._show(TURN_PHASE.get(state) or self._idle_phase())

    def _show_idle(self, detail: str) -> None:
        """A message in place of the ready hint, unless a turn is going on."""
        conversation = self.conversation
        if conversation is None or conversation.state is TurnState.IDLE:
            self._show(self._idle_phase(), detail=detail)

    def _show(self, phase: Phase, detail: str = "") -> None:
        with self._lock:
            turn = self._turn
            now_shown = shown(phase, detail=detail,
                              timing=turn.timing.breakdown() if turn is not None else None,
                              can_talk=self.can_talk, hands_free=self.hands_free is not None)
            if now_shown != self.shown:
                self.shown = now_shown
                self.listener.display_changed(now_shown)  # in order, under the lock

    # ----- lost devices ------------------------------------------------------------------
    def _device_lost(self, exc: Exception) -> None:
        """An audio device stopped working (called on an audio thread)."""
        log.info("session: audio device lost: %s", exc)
        self._post(lambda: self._on_device_lost(str(exc)))

    def _on_device_lost(self, message: str) -> None:
        if self._closing or (self._recovery is not None and self._recovery.is_alive()):
            return
        self._stop_conversation()
        self._lost_message = message
        self._show(Phase.DEVICE_LOST, detail=message)
        self._schedule_recovery()

    def _schedule_recovery(self) -> None:
        """Try to reopen the devices soon: quickly at first, then every few seconds for as
        long as they stay away (a headset unplugged for a minute comes back by itself)."""
        if self._closing:
            return
        self._recover_tries += 1
        pause = RECOVER_AFTER_S if self._recover_tries <= RECOVER_TRIES else RECOVER_POLL_S
        recovery = threading.Thread(target=self._wait_then_recover, args=(pause,),
                                    name="recover-audio", daemon=True)
        recovery.start()
        self._recovery = recovery  # only a started thread: close() joins it

    def _wait_then_recover(self, pause: float) -> None:
        deadline = time.monotonic() + pause
        while not self._closing and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self._closing:
            self._post(self._recover)

    def _recover(self) -> None:
        """Reopen the audio devices and go on with the same engines. While they stay
        away the conversation goes on typed-only and the devices are tried again."""
        if self._closing or self.engines is None:
            return
        if self.conversation is None:
            self._show(Phase.RECOVERING)
        try:
            ends = open_devices(self.settings, on_lost=self._device_lost)
        except Exception as exc:  # PortAudio itself in trouble (re-initialising, say)
            ends = AudioEnds(problems=[f"{type(exc).__name__}: {exc}"])
        if ends.mic is None and ends.speaker is None:
            ends.close(0.5)
            log.info("session: audio devices still gone (try %d): %s", self._recover_tries,
                     "; ".join(ends.problems))
            if self.conversation is None:  # typing works meanwhile
                self.audio.close(0.5)
                self.start(self.engines, ends)
            self._schedule_recovery()
            return
        self._stop_conversation()
        self.audio.close(0.5)
        self.start(self.engines, ends)
        log.info("session: audio devices reopened")
        self._recover_tries = 0

    # ----- shutting down -------------------------------------------------------------
    def _stop_conversation(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Stop hands-free listening and close the conversation (the audio stays open)."""
        deadline = time.monotonic() + timeout
        ended = True
        self._talking = False
        if self.hands_free is not None:
            ended = self.hands_free.stop(timeout)
            self.hands_free = None
        if self.conversation is not None:
            ended = self.conversation.close(max(0.0, deadline - time.monotonic())) and ended
            self.conversation = None
        return ended

    def _close_audio_and_conversation(self, timeout: float) -> bool:
        """Two thirds of ``timeout`` at most for the workers, the rest for the devices."""
        deadline = time.monotonic() + timeout
        ended = self._stop_conversation(timeout * 2 / 3)
        return self.audio.close(max(0.05, deadline - time.monotonic())) and ended

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Stop everything within ``timeout`` seconds; True if every thread ended."""
        deadline = time.monotonic() + timeout
        self._closing = True
        if self._rest_timer is not None:
            self._rest_timer.cancel()
        ended = self._close_audio_and_conversation(timeout)
        recovery = self._recovery
        if recovery is not None:
            recovery.join(max(0.0, deadline - time.monotonic()))
            ended = ended and not recovery.is_alive()
        log.info("session: closed%s", "" if ended else " (some threads still running)")
        return ended

