"""The Conversation tab: talk button (and Space), live audio, bubbles, typed fallback.

Models load in a worker thread when the tab is created; until they are ready the talk
button and text box are disabled and the status line says what is loading. Audio devices
open after that; a missing microphone leaves typed conversation working, a missing
speaker leaves text replies working.
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

    def __init__(self, settings: Settings, generation: int) -> None:
        super().__init__()
        self.settings = settings
        self.generation = generation

    def run(self) -> None:
        try:
            from voicebot.pipeline.session import load_engines

            engines = load_engines(self.settings, progress=self.progress.emit)
            self.loaded.emit(engines, self.generation)
        except Exception as exc:  # shown to the user; the app keeps running
            log.exception("loading the models failed")
            self.failed.emit(f"{type(exc).__name__}: {exc}")


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
        has_mic = enabled and self.capture is not None
        self.talk_button.setEnabled(has_mic)
        self.text_box.setEnabled(enabled)
        self.send_button.setEnabled(enabled)

    # ----- start-up -------------------------------------------------------------
    def _model_settings(self) -> tuple:
        """A snapshot of what decides the engines (compared to know when to reload)."""
        return copy.deepcopy((self.settings.asr, self.settings.chat, self.settings.tts))

    def load_engines(self) -> None:
        self._engine_settings = self._model_settings()
        self._load_generation += 1
        self._loader = EngineLoader(self.settings, self._load_generation)
        # Bound methods of this widget: Qt disconnects them if the tab is destroyed first.
        self._loader.progress.connect(self._on_load_progress)
        self._loader.loaded.connect(self._on_loaded)
        self._loader.failed.connect(self._on_load_failed)
        threading.Thread(target=self._loader.run, name="load-engines", daemon=True).start()

    def _on_load_progress(self, text: str) -> None:
        self.status_label.setText(f"Loading: {text}…")

    def _on_loaded(self, engines: Any, generation: int) -> None:
        # Settings changed again while loading: only the newest load is used.
        if generation == self._load_generation:
            self.use_engines(engines)

    def use_engines(self, engines: Any) -> None:
        """Engines are loaded: open audio and build the conversation."""
        from voicebot.pipeline.session import build_conversation

        if self._closing:
            return
        self.engines = engines
        problems = self._open_audio()
        self.conversation = build_conversation(
            self.settings, engines, player=self.player,
            mic=self.capture.ring(16000) if self.capture else None, listener=self.bridge)
        self.conversation.history = messages_from_history(self.saved_turns)
        if self.settings.audio.hands_free and self.capture is not None:
            from voicebot.pipeline.hands_free import HandsFree

            self.hands_free = HandsFree(self.conversation, self.capture.ring(16000),
                                        headset=self.settings.audio.headset_mode).start()
        self._set_controls_enabled(True)
        self.status_label.setText("; ".join(problems) if problems else
                                  "Ready: hold the button or Space and speak.")
        self.engines_ready.emit()

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
    def apply_settings(self, settings: Settings) -> None:
        """Use new settings: reload models if they changed, reopen the audio devices."""
        self.settings = settings
        reload_models = self._engine_settings != self._model_settings()
        self._close_session()
        if (reload_models or self.engines is None) and self._loads_models:
            self.engines = None
            self.status_label.setText("Loading models…")
            self.load_engines()
        elif self.engines is not None:
            self.use_engines(self.engines)

    def _close_session(self, timeout: float = 1.5) -> None:
        """Close the conversation and the audio devices (the engines stay loaded)."""
        self._set_controls_enabled(False)
        self._talking = False
        if self.scope is not None:
            self.scope.stop()
        if self.hands_free is not None:
            self.hands_free.stop()
            self.hands_free = None
        if self.conversation is not None:
            self.conversation.close(timeout)
            self.conversation = None
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
