"""The Conversation tab: a view over a ``Session`` (voicebot.pipeline.live_session).

The session owns the engines, audio devices, conversation, hands-free listening and
history; this tab shows them (bubbles, live audio, the state) and turns the user's
actions into session commands. Models load in a worker thread when the tab is created;
until they are ready the talk button and text box are disabled.

Push-to-talk: hold the button, or Space anywhere in the window while not typing in the
text box, or Ctrl+Space even while typing. After Send, the focus goes back to the talk
button, so Space talks again. Esc stops the bot.

What the state pill, status line, timing label and the main window's status bar say
comes from one value, the session's ``Shown`` (voicebot.pipeline.display_state).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
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

from voicebot.audio.resample import ASR_RATE
from voicebot.pipeline.audio_ends import AudioEnds
from voicebot.pipeline.conversation import Turn
from voicebot.pipeline.display_state import (
    EngineNames,
    Phase,
    Shown,
    timing_text,
    welcome_lines,
)
from voicebot.pipeline.live_session import Session
from voicebot.pipeline.session import voice_label
from voicebot.settings import Settings
from voicebot.ui import qt_fixes
from voicebot.ui.chat_view import Bubble, ChatView
from voicebot.ui.session_bridge import SessionBridge
from voicebot.ui.widgets.elided_label import ElidedLabel

qt_fixes.install()  # before the first emit: see qt_fixes

PTT_SHORTCUT = "Ctrl+Space"  # push-to-talk that works while typing
TROUBLE = (Phase.ERROR, Phase.DEVICE_LOST)


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
    state_text_changed = Signal(str)  # the state, one line (the main window's status bar)

    def __init__(self, settings: Settings, load_models: bool = True) -> None:
        super().__init__()
        self.bridge = SessionBridge()
        self.session = Session(settings, self.bridge, post=self.bridge.post,
                               loads_models=load_models)
        self.scope: Any = None
        self._user_bubbles: dict[int, Bubble] = {}
        self._bot_bubbles: dict[int, Bubble] = {}
        self._last_reply_id = -1  # the turn whose reply bubble is newest
        self._went_on: dict[int, str] = {}  # turn id -> "went on after your 'mm-hmm'"
        self._finished_meta: dict[int, str] = {}  # the last finished reply id -> its timing
        self._ptt_key_held = False
        self._on_screen = True
        self._build()
        self._connect_bridge()
        self.chat_view.set_welcome(welcome_lines(None))
        for record in self.session.saved_turns:
            self._show_record(record)
        QApplication.instance().installEventFilter(self)
        self._show(self.session.shown)
        if load_models:
            self.session.load()

    # The session's parts, as the window and the tests know them.
    settings = property(lambda self: self.session.settings)
    engines = property(lambda self: self.session.engines)
    conversation = property(lambda self: self.session.conversation)
    saved_turns = property(lambda self: self.session.saved_turns)

    # ----- layout ---------------------------------------------------------------
    def _build(self) -> None:
        self.state_label = QLabel()
        self.state_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.state_label.setMinimumWidth(130)
        self.status_label = ElidedLabel()  # a long problem never widens the window
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

        self.talk_button = QPushButton(f"Hold to talk  (Space, or {PTT_SHORTCUT} while typing)")
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

    def _connect_bridge(self) -> None:
        b = self.bridge
        b.display_signal.connect(self._show)
        b.notice_signal.connect(self.show_notice)
        b.engines_ready_signal.connect(self._on_engines_ready)
        b.voice_changed_signal.connect(self.voice_changed)
        b.voice_changed_signal.connect(lambda *_: self._update_welcome())
        b.turn_started_signal.connect(self._on_turn_started)
        b.partial_signal.connect(self._on_partial)
        b.final_signal.connect(self._on_final)
        b.reply_signal.connect(self._on_reply)
        b.finished_signal.connect(self._on_finished)
        b.dropped_signal.connect(self._on_dropped)

    def show_notice(self, text: str) -> None:
        self.notice_label.setText(text)
        self.notice_label.setVisible(bool(text))

    # ----- the state: pill, status line, timing, status bar from one value -------------
    def _show(self, shown: Shown) -> None:
        self.state_label.setText(shown.pill)
        self.state_label.setStyleSheet(
            f"background:{shown.color}; color:white; border-radius:10px; padding:4px 10px;"
            "font-weight:bold;")
        self.status_label.setText(shown.status)
        self.status_label.setStyleSheet(
            "color:#c53030;" if shown.phase in TROUBLE else "color:#4a5568;")
        self.timing_label.setText(shown.timing)
        self.talk_button.setEnabled(self.session.can_talk)
        self.text_box.setEnabled(self.session.can_type)
        self.send_button.setEnabled(self.session.can_type)
        self.state_text_changed.emit(shown.status_bar)

    def state_text(self) -> str:
        """What the status bar says about the state now."""
        return self.session.shown.status_bar

    # ----- engines, voices, settings ----------------------------------------------
    def use_engines(self, engines: Any, audio: AudioEnds | None = None) -> None:
        """Engines are loaded: open audio (or use ``audio``) and start the conversation."""
        self.session.start(engines, audio)

    def _on_engines_ready(self, engines: Any) -> None:
        capture = self.session.capture
        if capture is not None:
            from voicebot.ui.widgets.scope import AudioScope

            if self.scope is None:
                self.scope = AudioScope()
                self.scope_holder.addWidget(self.scope)
            self.scope.set_source(capture.ring(ASR_RATE), ASR_RATE, stats=capture.stats)
            self.scope.start()
        self._update_welcome()
        self.engines_ready.emit()

    def _update_welcome(self) -> None:
        """The empty conversation names the models in use and says how to talk."""
        engines, settings = self.session.engines, self.session.settings
        if engines is None:
            return
        names = EngineNames(
            recognizer=settings.asr.model if engines.recognizer is not None else "",
            chat=settings.chat.model if engines.chat is not None else "",
            voice=voice_label(engines.voice) if engines.synthesizer is not None else "",
            problems=tuple(engines.problems.values()))
        self.chat_view.set_welcome(welcome_lines(names, can_talk=self.session.can_talk,
                                                 hands_free=self.session.hands_free is not None))

    def request_voice(self, voice: str) -> None:
        """Load ``voice`` beside the running conversation (``voice_changed`` reports)."""
        self.session.request_voice(voice)

    def apply_settings(self, settings: Settings, voice: str | None = None) -> None:
        """Use new settings (reloading only the engines whose settings changed)."""
        self._ptt_key_held = False
        if self.scope is not None:
            self.scope.stop()
        self.session.apply_settings(settings, voice)

    def clear_history(self) -> None:
        self.session.clear_history()
        self.chat_view.clear()

    def shutdown(self, timeout: float = 1.5) -> None:
        """Stop everything within ``timeout`` seconds (the window closes after)."""
        QApplication.instance().removeEventFilter(self)
        if self.scope is not None:
            self.scope.stop()
        self.session.close(timeout)

    # ----- user actions ---------------------------------------------------------
    def press_talk(self) -> None:
        if self.session.start_listening() is not None:
            self.partial_label.setText("")

    def release_talk(self) -> None:
        self.session.stop_listening()

    def send_text(self) -> None:
        text = self.text_box.text().strip()
        if text and self.session.submit_text(text) is not None:
            self.text_box.clear()
            self.talk_button.setFocus()  # Space talks again

    def stop_bot(self) -> None:
        self.session.stop()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        """Space held anywhere in the window is push-to-talk (unless typing: then
        Ctrl+Space is); Esc stops the bot."""
        kind = event.type()
        if (kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and self.isVisible()
                and isinstance(watched, QWidget) and watched.window() is self.window()):
            key_event: QKeyEvent = event  # type: ignore[assignment]
            if key_event.key() == Qt.Key.Key_Space and self._is_talk_key(key_event, watched):
                if not key_event.isAutoRepeat():
                    self._ptt_key_held = kind == QEvent.Type.KeyPress
                    (self.press_talk if self._ptt_key_held else self.release_talk)()
                return True
            if key_event.key() == Qt.Key.Key_Escape and kind == QEvent.Type.KeyPress:
                self.stop_bot()
                return True
        if kind in (QEvent.Type.WindowStateChange, QEvent.Type.Show, QEvent.Type.Hide) \
                and (watched is self or watched is self.window()):
            QTimer.singleShot(0, self._sync_on_screen)  # after the state has changed
        return super().eventFilter(watched, event)

    def _sync_on_screen(self) -> None:
        """Out of sight (another tab, minimised, hidden), an idle push-to-talk session
        stops its audio streams; shown again, they restart (Session.set_on_screen)."""
        window = self.window()
        on_screen = self.isVisible() and not (window is not None and window.isMinimized())
        if on_screen != self._on_screen:
            self._on_screen = on_screen
            self.session.set_on_screen(on_screen)

    def _is_talk_key(self, event: QKeyEvent, watched: QObject) -> bool:
        if event.type() == QEvent.Type.KeyRelease and self._ptt_key_held:
            return True  # the release of a held talk key, whatever Ctrl does meanwhile
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            return True
        typing = isinstance(watched, QLineEdit | QTextEdit) or isinstance(
            QApplication.focusWidget(), QLineEdit | QTextEdit)
        return not typing

    # ----- conversation events (GUI thread) -------------------------------------
    def _on_turn_started(self, turn: Turn) -> None:
        # Push-to-talk, hands-free and typed turns alike: the user's words get a bubble.
        text = turn.user_text if turn.source == "text" else "…"
        self._user_bubbles[turn.id] = self.chat_view.add_bubble(text, from_user=True)

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
            self._last_reply_id = turn.id
        bubble.append_text(piece)
        self.chat_view.scroll_to_end()

    def _on_finished(self, turn: Turn) -> None:
        bubble = self._bot_bubbles.get(turn.id)
        if bubble is not None:
            bubble.set_text(bubble.text().strip())
            meta = timing_text(turn.timing.breakdown())
            meta += "  (interrupted)" if turn.cancelled else ""
            self._finished_meta = {turn.id: meta}  # only the latest reply can be paused
            went_on = self._went_on.pop(turn.id, "")
            bubble.set_meta(meta + (f"  · {went_on}" if went_on else ""))

    def _on_dropped(self, turn: Turn) -> None:
        """Hands-free: what the user said over the reply paused it, and was only a
        backchannel or no words, so the reply went on: say so on the reply's bubble
        (the words are not a turn of their own, not answered, not in the history)."""
        bubble = self._bot_bubbles.get(self._last_reply_id)
        if bubble is None:
            return  # paused before any of the reply was shown
        heard = turn.user_text.strip()
        note = f"went on after your “{heard}”" if heard else "paused for a sound, went on"
        # The reply may have finished first (a short one): keep its timing beside the note.
        finished = self._finished_meta.get(self._last_reply_id)
        if finished is None:
            self._went_on[self._last_reply_id] = note
        bubble.set_meta(f"{finished}  · {note}" if finished else note)

    def _show_record(self, record: dict) -> None:
        if record.get("user"):
            self.chat_view.add_bubble(record["user"], from_user=True)
        if record.get("reply"):
            bubble = self.chat_view.add_bubble(record["reply"], from_user=False)
            bubble.set_meta(timing_text(record.get("timing_ms", {})))
