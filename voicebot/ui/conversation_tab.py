"""The Conversation tab: talk button (and Space), live audio, bubbles, typed fallback.

Models load in a worker thread when the tab is created; until they are ready the talk
button and text box are disabled and the status line says what is loading. Audio devices
open after that; a missing microphone leaves typed conversation working, a missing
speaker leaves text replies working.

Engines load independently (``voicebot.pipeline.session``): one that fails is named in
the notice line and the rest keep working. A voice chosen later ("Use this voice", the
Settings dialog) loads beside the running conversation and replaces the voice only once
it has loaded; only then is it written to the settings. If it fails the previous voice
keeps speaking and the notice says why.
"""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from voicebot.pipeline.conversation import Conversation, Turn
from voicebot.pipeline.history import load_history, messages_from_history, save_history
from voicebot.pipeline.state import TurnState
from voicebot.settings import Settings
from voicebot.ui.chat_view import Bubble, ChatView
from voicebot.ui.conversation_bridge import ConversationBridge

log = logging.getLogger(__name__)

STATE_LOOK = {  # label, background colour
    TurnState.IDLE: ("Ready", "#718096"),
    TurnState.LISTENING: ("Listening…", "#c53030"),
    TurnState.RECOGNISING: ("Recognising…", "#dd6b20"),
    TurnState.THINKING: ("Thinking…", "#6b46c1"),
    TurnState.SPEAKING: ("Speaking…", "#2f855a"),
}
STAGE_LABELS = (("asr_ms", "ASR"), ("lm_first_token_ms", "LM first token"),
                ("tts_first_audio_ms", "TTS first audio"), ("voice_to_voice_ms", "total"))


class EngineLoader(QObject):
    """Loads the engines off the GUI thread.

    It runs on a plain daemon thread rather than a QThread: loading a model cannot be
    interrupted, and a window closed meanwhile must not wait for it or crash on exit.
    Its signals reach the GUI thread as queued calls.
    """

    progress = Signal(str)
    loaded = Signal(object, int)  # Engines, generation
    failed = Signal(str)

    def __init__(self, settings: Settings, generation: int, roles: tuple[str, ...] | None = None,
                 previous: Any = None) -> None:
        super().__init__()
        # A copy: the settings object may change while this thread reads it.
        self.settings = copy.deepcopy(settings)
        self.generation = generation
        self.roles = roles
        self.previous = previous

    def run(self) -> None:
        try:
            from voicebot.pipeline.session import ROLES, load_engines

            engines = load_engines(self.settings, progress=self.progress.emit,
                                   roles=self.roles or ROLES, previous=self.previous,
                                   strict=False)
            self.loaded.emit(engines, self.generation)
        except Exception as exc:  # shown to the user; the app keeps running
            log.exception("loading the models failed")
            self.failed.emit(f"{type(exc).__name__}: {exc}")


class VoiceLoader(QObject):
    """Loads one voice off the GUI thread (see EngineLoader for why a plain thread)."""

    loaded = Signal(str, object)  # voice, synthesizer
    failed = Signal(str, str)  # voice, one-line reason

    def __init__(self, voice: str) -> None:
        super().__init__()
        self.voice = voice

    def run(self) -> None:
        from voicebot.pipeline.session import load_synthesizer, one_line

        try:
            synthesizer = load_synthesizer(self.voice)
        except Exception as exc:  # a broken voice must never reach the conversation
            log.exception("loading the voice %s failed", self.voice)
            self.failed.emit(self.voice, one_line(exc, self.voice))
            return
        self.loaded.emit(self.voice, synthesizer)


def timing_text(breakdown: dict[str, float]) -> str:
    parts = [f"{label} {breakdown[key]:.0f} ms" for key, label in STAGE_LABELS
             if key in breakdown]
    if "voice_to_voice_ms" not in breakdown and "reply_ms" in breakdown:
        parts.append(f"total {breakdown['reply_ms']:.0f} ms")  # a typed turn
    return " · ".join(parts)


def alternatives_text(turn: Turn) -> str:
    lines = []
    for rank, hyp in enumerate(turn.hypotheses, 1):
        score = getattr(hyp, "total_score", None)
        score = hyp.acoustic_score if score is None else score
        lines.append(f"{rank}. {hyp.text}   (score {score:.2f})")
    return "\n".join(lines)


class ConversationTab(QWidget):
    engines_ready = Signal()
    # voice, whether it now speaks, a one-line message ("Use this voice", Settings)
    voice_changed = Signal(str, bool, str)

    def __init__(self, settings: Settings, load_models: bool = True) -> None:
        super().__init__()
        self.settings = settings
        self.engines: Any = None
        self.conversation: Conversation | None = None
        self.capture: Any = None
        self.player: Any = None
        self.scope: Any = None
        self.hands_free: Any = None
        self.saved_turns = load_history()
        self._user_bubbles: dict[int, Bubble] = {}
        self._bot_bubbles: dict[int, Bubble] = {}
        self._talking = False
        self._closing = False
        self._load_generation = 0
        self._loads_models = load_models  # False: engines are handed in (use_engines)
        self._engine_settings = self._model_settings()
        self._voice_loaders: list[VoiceLoader] = []  # kept alive while they run
        self.bridge = ConversationBridge()
        self._build()
        self._connect_bridge()
        for record in self.saved_turns:
            self._show_record(record)
        QApplication.instance().installEventFilter(self)
        if load_models:
            self.load_engines()

    # ----- layout ---------------------------------------------------------------
    def _build(self) -> None:
        self.state_label = QLabel()
        self.state_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.state_label.setMinimumWidth(130)
        self.status_label = QLabel("Loading models…")
        self.status_label.setStyleSheet("color:#4a5568;")
        self.timing_label = QLabel("")
        self.timing_label.setStyleSheet("color:#4a5568;")
        top = QHBoxLayout()
        top.addWidget(self.state_label)
        top.addWidget(self.status_label, 1)
        top.addWidget(self.timing_label)
        # What did not load, or a voice that could not be used: one line each.
        self.notice_label = QLabel("")
        self.notice_label.setWordWrap(True)
        self.notice_label.setStyleSheet("color:#9c4221; background:#fefcbf; padding:4px;")
        self.notice_label.hide()

        self.chat_view = ChatView()
        self.partial_label = QLabel("")
        self.partial_label.setWordWrap(True)
        self.partial_label.setStyleSheet("color:#718096; font-style:italic;")
        self.scope_holder = QVBoxLayout()

        self.talk_button = QPushButton("Hold to talk  (Space)")
        self.talk_button.setMinimumHeight(56)
        self.talk_button.setStyleSheet("font-size:16px; font-weight:bold;")
        self.talk_button.pressed.connect(self.press_talk)
        self.talk_button.released.connect(self.release_talk)
        self.text_box = QLineEdit()
        self.text_box.setPlaceholderText("…or type a message and press Enter")
        self.text_box.returnPressed.connect(self.send_text)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send_text)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the bot (Esc)")
        self.stop_button.clicked.connect(self.stop_bot)
        bottom = QHBoxLayout()
        bottom.addWidget(self.talk_button, 2)
        bottom.addWidget(self.text_box, 3)
        bottom.addWidget(self.send_button)
        bottom.addWidget(self.stop_button)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.notice_label)
        layout.addWidget(self.chat_view, 3)
        layout.addWidget(self.partial_label)
        layout.addLayout(self.scope_holder, 2)
        layout.addLayout(bottom)
        self._show_state(TurnState.IDLE)
        self._set_controls_enabled(False)

    def _connect_bridge(self) -> None:
        b = self.bridge
        b.state_changed_signal.connect(self._show_state)
        b.partial_signal.connect(self._on_partial)
        b.final_signal.connect(self._on_final)
        b.reply_signal.connect(self._on_reply)
        b.finished_signal.connect(self._on_finished)
        b.error_signal.connect(self._on_error)

    def _set_controls_enabled(self, enabled: bool) -> None:
        enabled = enabled and self.conversation is not None
        has_mic = enabled and self.conversation.recognizer is not None
        self.talk_button.setEnabled(has_mic)
        self.text_box.setEnabled(enabled)
        self.send_button.setEnabled(enabled)

    # ----- start-up -------------------------------------------------------------
    def _model_settings(self) -> tuple:
        """A snapshot of what decides the engines (compared to know when to reload)."""
        return copy.deepcopy((self.settings.asr, self.settings.chat, self.settings.tts))

    def show_notice(self, text: str) -> None:
        self.notice_label.setText(text)
        self.notice_label.setVisible(bool(text))

    def load_engines(self, roles: tuple[str, ...] | None = None) -> None:
        """Load the engines (``roles``: only those, keeping the others) in a thread."""
        self._load_generation += 1
        self._loader = EngineLoader(self.settings, self._load_generation, roles,
                                    previous=self.engines if roles else None)
        # Bound methods of this widget: Qt disconnects them if the tab is destroyed first.
        self._loader.progress.connect(self._on_load_progress)
        self._loader.loaded.connect(self._on_loaded)
        self._loader.failed.connect(self._on_load_failed)
        threading.Thread(target=self._loader.run, name="load-engines", daemon=True).start()

    def _on_load_progress(self, text: str) -> None:
        self.status_label.setText(f"Loading: {text}…")

    def _on_loaded(self, engines: Any, generation: int) -> None:
        # Settings changed again while loading: only the newest load is used.
        if generation != self._load_generation:
            return
        roles = self._loader.roles
        if roles and "voice" not in roles and self.engines is not None:
            # A voice switched while these loaded (request_voice) is the one to keep.
            engines.synthesizer, engines.voice = self.engines.synthesizer, self.engines.voice
        self.use_engines(engines)

    def use_engines(self, engines: Any) -> None:
        """Engines are loaded: open audio and build the conversation."""
        if self._closing:
            return
        self.engines = engines
        self._settle_settings(engines)
        problems = self._open_audio()
        self._start_conversation()
        self.show_notice(engines.message() if hasattr(engines, "message") else "")
        if self.conversation is None:
            self.status_label.setText("The bot cannot answer without a chat model.")
        else:
            self.status_label.setText("; ".join(problems) if problems else
                                      "Ready: hold the button or Space and speak."
                                      if self.talk_button.isEnabled() else
                                      "Ready: type a message and press Enter.")
        self.engines_ready.emit()

    def _start_conversation(self) -> None:
        from voicebot.pipeline.session import build_conversation

        if getattr(self.engines, "chat", None) is None:
            self.conversation = None
            self._set_controls_enabled(False)
            return
        self.conversation = build_conversation(
            self.settings, self.engines, player=self.player,
            mic=self.capture.ring(16000) if self.capture else None, listener=self.bridge)
        self.conversation.history = messages_from_history(self.saved_turns)
        if self.settings.audio.hands_free and self.conversation.recognizer is not None:
            from voicebot.pipeline.hands_free import HandsFree

            self.hands_free = HandsFree(self.conversation, self.capture.ring(16000),
                                        headset=self.settings.audio.headset_mode).start()
        self._set_controls_enabled(True)

    def _settle_settings(self, engines: Any) -> None:
        """Make the settings say what really runs, and save them if that changed.

        A model setting that did not load while a previous engine was kept goes back to
        what that engine was loaded from; a saved voice that no longer loads becomes the
        voice that speaks instead (the notice says so), so a broken choice never
        persists."""
        from voicebot.pipeline.session import ROLE_SECTION

        problems = getattr(engines, "problems", {})
        loaded_from = dict(zip(("asr", "chat", "tts"), self._engine_settings, strict=True))
        changed = False
        for role, section in ROLE_SECTION.items():
            if role in problems and role != "voice" and getattr(engines, role, None) \
                    is not None and getattr(self.settings, section) != loaded_from[section]:
                setattr(self.settings, section, copy.deepcopy(loaded_from[section]))
                changed = True
        voice = getattr(engines, "voice", "")
        if voice and self.settings.tts.voice != voice:
            self.settings.tts.voice = voice
            changed = True
        self._engine_settings = self._model_settings()
        if changed:
            self._save_settings()

    def _save_settings(self) -> None:
        from voicebot.settings import save_settings

        try:
            save_settings(self.settings)
        except OSError as exc:
            log.warning("could not save the settings: %s", exc)

    # ----- changing the voice -----------------------------------------------------
    def request_voice(self, voice: str) -> None:
        """Load ``voice`` beside the running conversation; it speaks (and is saved in the
        settings) only once it has loaded. ``voice_changed`` reports the outcome."""
        if self._closing:
            return
        if self.engines is None:
            # The start-up load reads the settings' voice when it gets there; a switch
            # now would race it.
            self.voice_changed.emit(voice, False, "The models are still loading; choose the "
                                                  "voice again in a moment.")
            return
        loader = VoiceLoader(voice)
        loader.loaded.connect(self._on_voice_loaded)
        loader.failed.connect(self._on_voice_failed)
        self._voice_loaders.append(loader)
        self.status_label.setText("Loading the new voice…")
        threading.Thread(target=loader.run, name="load-voice", daemon=True).start()

    def _on_voice_loaded(self, voice: str, synthesizer: Any) -> None:
        from voicebot.pipeline.session import voice_label

        self._forget_voice_loader(voice)
        if self._closing or self.engines is None:
            return
        had_voice = self.engines.synthesizer is not None
        self.engines.synthesizer, self.engines.voice = synthesizer, voice
        self.engines.problems.pop("voice", None)
        self.settings.tts.voice = voice
        self._engine_settings = self._model_settings()
        self._save_settings()
        if self.conversation is not None:
            if had_voice:
                self.conversation.synthesizer = synthesizer  # the next clause uses it
            else:  # replies were text only: rebuild with the speaker
                self._close_conversation_only()
                self._start_conversation()
        message = f"The bot now speaks with the voice {voice_label(voice)}."
        self.show_notice(self.engines.message())
        self.status_label.setText(message)
        self.voice_changed.emit(voice, True, message)

    def _on_voice_failed(self, voice: str, reason: str) -> None:
        from voicebot.pipeline.session import voice_label

        self._forget_voice_loader(voice)
        speaking = self.engines is not None and self.engines.synthesizer is not None
        message = (f"The voice {voice_label(voice)} could not be loaded ({reason}); "
                   + ("the previous voice keeps speaking." if speaking else
                      "the voice setting is unchanged."))
        self.show_notice(message)
        self.status_label.setText("Ready." if self.conversation is not None else
                                  self.status_label.text())
        self.voice_changed.emit(voice, False, message)

    def _forget_voice_loader(self, voice: str) -> None:
        self._voice_loaders = [v for v in self._voice_loaders if v.voice != voice]

    def _close_conversation_only(self, timeout: float = 1.5) -> None:
        """Stop hands-free listening and close the conversation (audio stays open)."""
        if self.hands_free is not None:
            self.hands_free.stop()
            self.hands_free = None
        if self.conversation is not None:
            self.conversation.close(timeout)
            self.conversation = None

    def _open_audio(self) -> list[str]:
        from voicebot.audio.capture import Capture
        from voicebot.audio.devices import AudioDeviceError
        from voicebot.audio.player import Player

        problems = []
        try:
            self.capture = Capture(self.settings.audio.input_device).start()
            self._attach_scope()
        except AudioDeviceError as exc:
            self.capture = None
            problems.append(f"No microphone ({exc}); typing works")
        try:
            self.player = Player(self.settings.audio.output_device).open()
        except AudioDeviceError as exc:
            self.player = None
            problems.append(f"No speaker ({exc}); replies are shown as text")
        return problems

    def _attach_scope(self) -> None:
        from voicebot.ui.widgets.scope import AudioScope

        if self.scope is None:
            self.scope = AudioScope()
            self.scope_holder.addWidget(self.scope)
        self.scope.set_source(self.capture.ring(16000), 16000, stats=self.capture.stats)
        self.scope.start()

    def _on_load_failed(self, message: str) -> None:
        self.status_label.setText(f"Could not load the models: {message}")
        self.status_label.setStyleSheet("color:#c53030;")
        self.show_notice(f"Could not load the models: {message}")

    # ----- user actions ---------------------------------------------------------
    def press_talk(self) -> None:
        if self.conversation is None or self.capture is None or self._talking:
            return
        self._talking = True
        self.partial_label.setText("")
        turn = self.conversation.start_listening()
        self._user_bubbles[turn.id] = self.chat_view.add_bubble("…", from_user=True)

    def release_talk(self) -> None:
        if not self._talking or self.conversation is None:
            return
        self._talking = False
        self.conversation.stop_listening()

    def send_text(self) -> None:
        text = self.text_box.text().strip()
        if not text or self.conversation is None:
            return
        self.text_box.clear()
        turn = self.conversation.submit_text(text)
        if turn is not None:
            self._user_bubbles[turn.id] = self.chat_view.add_bubble(text, from_user=True)

    def stop_bot(self) -> None:
        if self.conversation is not None:
            self.conversation.stop()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        """Space held anywhere in the window is push-to-talk (unless typing)."""
        kind = event.type()
        if (kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and self.isVisible()
                and isinstance(watched, QWidget) and watched.window() is self.window()):
            key_event: QKeyEvent = event  # type: ignore[assignment]
            typing = isinstance(watched, QLineEdit | QTextEdit) or isinstance(
                QApplication.focusWidget(), QLineEdit | QTextEdit)
            if key_event.key() == Qt.Key.Key_Space and not typing:
                if not key_event.isAutoRepeat():
                    if kind == QEvent.Type.KeyPress:
                        self.press_talk()
                    else:
                        self.release_talk()
                return True
            if key_event.key() == Qt.Key.Key_Escape and kind == QEvent.Type.KeyPress:
                self.stop_bot()
                return True
        return super().eventFilter(watched, event)

    # ----- conversation events (GUI thread) -------------------------------------
    def _show_state(self, state: TurnState) -> None:
        text, colour = STATE_LOOK[state]
        self.state_label.setText(text)
        self.state_label.setStyleSheet(
            f"background:{colour}; color:white; border-radius:10px; padding:4px 10px;"
            "font-weight:bold;")

    def _on_partial(self, turn: Turn, text: str) -> None:
        self.partial_label.setText(text)
        bubble = self._user_bubbles.get(turn.id)
        if bubble is not None:
            bubble.set_text(text or "…")

    def _on_final(self, turn: Turn) -> None:
        self.partial_label.setText("")
        bubble = self._user_bubbles.get(turn.id)
        if bubble is None:
            return
        if not turn.user_text:
            bubble.set_text("(nothing heard)")
            return
        bubble.set_text(turn.user_text)
        if len(turn.hypotheses) > 1:
            bubble.set_meta(f"{len(turn.hypotheses)} alternatives (hover)",
                            alternatives_text(turn))

    def _on_reply(self, turn: Turn, piece: str) -> None:
        bubble = self._bot_bubbles.get(turn.id)
        if bubble is None:
            bubble = self._bot_bubbles[turn.id] = self.chat_view.add_bubble("", from_user=False)
        bubble.append_text(piece)
        self.chat_view.scroll_to_end()

    def _on_finished(self, turn: Turn) -> None:
        breakdown = turn.timing.breakdown()
        bubble = self._bot_bubbles.get(turn.id)
        if bubble is not None:
            bubble.set_text(bubble.text().strip())
            meta = timing_text(breakdown)
            bubble.set_meta(meta + ("  (interrupted)" if turn.cancelled else ""))
        self.timing_label.setText(timing_text(breakdown))
        if turn.user_text:
            self.saved_turns.append(turn.record())
            try:
                save_history(self.saved_turns)
            except OSError as exc:
                log.warning("could not save the history: %s", exc)

    def _on_error(self, turn: Turn | None, message: str) -> None:
        self.status_label.setText(f"Problem: {message}")

    def _show_record(self, record: dict) -> None:
        if record.get("user"):
            self.chat_view.add_bubble(record["user"], from_user=True)
        if record.get("reply"):
            bubble = self.chat_view.add_bubble(record["reply"], from_user=False)
            bubble.set_meta(timing_text(record.get("timing_ms", {})))

    def clear_history(self) -> None:
        self.saved_turns = []
        self.chat_view.clear()
        if self.conversation is not None:
            self.conversation.history = []
        save_history(self.saved_turns)

    # ----- settings changes and shutdown -------------------------------------------
    def apply_settings(self, settings: Settings, voice: str | None = None) -> None:
        """Use new settings: reload the engines whose settings changed (keeping the
        others), reopen the audio devices. ``voice``: a voice to switch to, loaded
        beside the conversation (``request_voice``); ``settings.tts`` changes only once
        it has loaded."""
        from voicebot.pipeline.session import ROLE_SECTION

        self.settings = settings
        loaded_from = dict(zip(("asr", "chat", "tts"), self._engine_settings, strict=True))
        roles = tuple(role for role, section in ROLE_SECTION.items()
                      if section != "tts" and getattr(settings, section) != loaded_from[section])
        if voice is not None and voice == getattr(self.engines, "voice", None):
            voice = None  # already speaking
        self._close_session()
        if self._loads_models and (roles or self.engines is None):
            self.status_label.setText("Loading models…")
            self.load_engines(roles if self.engines is not None else None)
        elif self.engines is not None:
            self.use_engines(self.engines)
        if voice is not None:
            self.request_voice(voice)

    def _close_session(self, timeout: float = 1.5) -> None:
        """Close the conversation and the audio devices (the engines stay loaded)."""
        self._set_controls_enabled(False)
        self._talking = False
        if self.scope is not None:
            self.scope.stop()
        self._close_conversation_only(timeout)
        # Closing a stream on a vanished device can hang inside PortAudio: bounded waits.
        closers = []
        if self.player is not None:
            closers.append(threading.Thread(target=self.player.close, daemon=True))
        if self.capture is not None:
            closers.append(threading.Thread(target=self.capture.stop, daemon=True))
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join(0.5)
        self.player = self.capture = None

    def shutdown(self, timeout: float = 1.5) -> None:
        """Stop everything within ``timeout`` seconds (the window closes after)."""
        self._closing = True
        QApplication.instance().removeEventFilter(self)
        self._close_session(timeout)
