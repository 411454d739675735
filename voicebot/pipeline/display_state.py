"""What the window shows about the session, derived from one value (GUI-free).

The state pill, the status line, the main window's status bar and the timing label all
come from one :class:`Shown`, made by :func:`shown` from the session's :class:`Phase`,
so they cannot disagree. The session (``voicebot.pipeline.live_session``) decides the
phase; the Conversation tab only paints what it is given.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voicebot.pipeline.state import TurnState


class Phase(enum.Enum):
    LOADING = "loading"
    READY = "ready"  # push-to-talk: waiting for the button (or a typed message)
    WAITING = "waiting"  # hands-free: waiting for the user to start speaking
    LISTENING = "listening"
    RECOGNIZING = "recognising"
    THINKING = "thinking"
    SPEAKING = "speaking"
    PAUSED = "paused"  # hands-free: the reply waits while the user talks over it
    INTERRUPTED = "interrupted"  # the last reply was stopped or talked over
    ERROR = "error"
    DEVICE_LOST = "device lost"
    RECOVERING = "recovering"


# A turn's own states, as phases.
TURN_PHASE = {
    TurnState.LISTENING: Phase.LISTENING,
    TurnState.RECOGNIZING: Phase.RECOGNIZING,
    TurnState.THINKING: Phase.THINKING,
    TurnState.SPEAKING: Phase.SPEAKING,
    TurnState.PAUSED: Phase.PAUSED,
}

# pill text, pill color
LOOK: dict[Phase, tuple[str, str]] = {
    Phase.LOADING: ("Loading…", "#718096"),
    Phase.READY: ("Ready", "#718096"),
    Phase.WAITING: ("Waiting", "#2b6cb0"),
    Phase.LISTENING: ("Listening…", "#c53030"),
    Phase.RECOGNIZING: ("Recognising…", "#dd6b20"),
    Phase.THINKING: ("Thinking…", "#6b46c1"),
    Phase.SPEAKING: ("Speaking…", "#2f855a"),
    Phase.PAUSED: ("Paused by you", "#d69e2e"),
    Phase.INTERRUPTED: ("Interrupted", "#975a16"),
    Phase.ERROR: ("Error", "#9b2c2c"),
    Phase.DEVICE_LOST: ("Device lost", "#9b2c2c"),
    Phase.RECOVERING: ("Recovering…", "#b7791f"),
}

# Phases about the session, not a turn: no turn timing beside them.
NO_TURN = (Phase.LOADING, Phase.DEVICE_LOST, Phase.RECOVERING)

PTT_HINT = "hold the button or Space (Ctrl+Space while typing) and speak"
TYPE_HINT = "type a message and press Enter"

# Timing stage -> what it measures, in words ({} is the milliseconds).
TIMING_WORDS = (
    ("asr_ms", "recognised in {} ms"),
    ("lm_first_token_ms", "first word after {} ms"),
    ("tts_first_audio_ms", "voice ready in {} ms"),
    ("voice_to_voice_ms", "first sound after {} ms (total)"),
)


@dataclass(frozen=True)
class Shown:
    """Everything the window shows about the state, at one moment."""

    phase: Phase
    pill: str
    color: str
    status: str
    timing: str

    @property
    def status_bar(self) -> str:
        """The status line, led by the state's name unless it already starts with it
        ("Ready: hold the button…", not "Ready: Ready: hold the button…")."""
        name = self.pill.rstrip("…")
        if self.status.lower().startswith(name.lower()):
            return self.status
        return f"{name}: {self.status}"


def timing_text(breakdown: dict[str, float]) -> str:
    """A turn's timing, each figure named by what it measures; typed turns' total counts
    from the moment the text was sent."""
    parts = [words.format(f"{breakdown[key]:.0f}") for key, words in TIMING_WORDS
             if key in breakdown]
    if "voice_to_voice_ms" not in breakdown and "reply_ms" in breakdown:
        parts.append(f"first sound after {breakdown['reply_ms']:.0f} ms (total)")
    return " · ".join(parts)


def _status(phase: Phase, detail: str, can_talk: bool, hands_free: bool) -> str:
    hint = ("just start speaking, or " + TYPE_HINT if hands_free else
            PTT_HINT + ", or " + TYPE_HINT) if can_talk else TYPE_HINT
    texts = {
        Phase.LOADING: f"Loading: {detail}…" if detail else "Loading models…",
        Phase.READY: detail or f"Ready: {hint}.",
        Phase.WAITING: detail or f"Hands-free: {hint}.",
        Phase.LISTENING: ("Listening: pause when you are done." if hands_free else
                          "Listening: let go when you are done."),
        Phase.RECOGNIZING: "Working out what you said…",
        Phase.THINKING: "Thinking of a reply (Esc stops it)…",
        Phase.SPEAKING: "Speaking (talk to interrupt, Esc stops it)…",
        # Until the words are known: a murmur lets the reply go on, words start a turn.
        Phase.PAUSED: ("Paused by you: listening. Say what you want, or "
                       "\u201cmm-hmm\u201d and it goes on (Esc stops it)…"),
        Phase.INTERRUPTED: f"Stopped. {hint[0].upper()}{hint[1:]}.",
        Phase.ERROR: f"Problem: {detail}" if detail else "Problem: something went wrong.",
        Phase.DEVICE_LOST: f"Audio device lost: {detail}" if detail else
        "Audio device lost.",
        Phase.RECOVERING: "Reopening the audio devices…",
    }
    return texts[phase]


def shown(phase: Phase, *, detail: str = "", timing: dict[str, float] | None = None,
          can_talk: bool = False, hands_free: bool = False) -> Shown:
    """What to show for ``phase``. ``detail``: the loading step, the problem, or a
    message replacing the ready hint; ``timing``: the current (or last) turn's breakdown;
    ``can_talk``: a microphone and a recognizer work; ``hands_free``: VAD starts turns."""
    pill, color = LOOK[phase]
    turn_timing = "" if phase in NO_TURN else timing_text(timing or {})
    return Shown(phase, pill, color, _status(phase, detail, can_talk, hands_free),
                 turn_timing)


@dataclass(frozen=True)
class EngineNames:
    """What the first screen names: the model behind each part, or why it is missing."""

    recognizer: str = ""  # "" = not loaded
    chat: str = ""
    voice: str = ""
    problems: tuple[str, ...] = ()


def welcome_lines(names: EngineNames | None, can_talk: bool = False,
                  hands_free: bool = False) -> list[str]:
    """The empty conversation's text: how to talk, which models are in use (or that they
    are loading), and where a voice of one's own is made. Plain text, one paragraph each."""
    if names is None:
        return ["Loading the models (the first start converts them once, which takes "
                "longer).",
                "You can talk or type as soon as they are ready."]
    if not names.chat:
        how = "Replies need the chat model, which did not load (see the notice above)."
    elif can_talk:
        how = ("Just start speaking, or " + TYPE_HINT + "." if hands_free else
               PTT_HINT[0].upper() + PTT_HINT[1:] + ", or " + TYPE_HINT + ".")
    else:
        how = TYPE_HINT[0].upper() + TYPE_HINT[1:] + " (no microphone: see Settings)."
    parts = [f"listening with {names.recognizer}" if names.recognizer else
             "no speech recognition",
             f"replying with {names.chat}" if names.chat else "no chat model",
             f"speaking with {names.voice}" if names.voice else "replies as text only"]
    return [how, "Models: " + " · ".join(parts) + ".",
            "To hear it speak in your own voice, open the Training tab: read a few "
            "prompts aloud and train a voice of your own, on this computer."]
