"""The engines a conversation needs, loaded from the user's settings, and its wiring.

Loading the engines takes seconds (models are read and warmed up), so the ``Session``
(``voicebot.pipeline.live_session``) calls ``load_engines`` from a worker thread. Opening
audio is separate (``voicebot.pipeline.audio_ends``) because it can fail on its own (no
microphone) while typed conversation still works.

Engines load independently: one that fails (a recognizer model that is gone, a voice
whose files are broken) is left out with a one-line reason in ``Engines.problems`` and
the others still load. A saved voice that no longer loads falls back to the default
voice. What the app can still do follows from what loaded: no recognizer means typed
turns only, no voice means replies as text, no chat model means no replies.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from voicebot.pipeline.conversation import Conversation, ConversationListener
from voicebot.settings import Settings

log = logging.getLogger(__name__)

# Threads per stage on the CPU. The stages overlap (the chat model generates while the
# voice speaks the first clause), and on a 2-core machine two 2-thread stages at once
# collapse throughput, so each gets one; Whisper runs mostly alone and gets two.
ASR_THREADS = 2
CHAT_THREADS = 1
TTS_THREADS = 1
# The n-best scorer runs after the final decode, on the threads Whisper just left.
SCORER_THREADS = ASR_THREADS
# For the same reason the voice decodes one window at a time here: beside the chat model
# it already runs far ahead of playback, and a third busy thread would starve the audio
# threads. (`voicebot say` and `bench tts` use both cores.)
TTS_PARALLEL_WINDOWS = 1
# The roles, in loading order; each is loaded (or fails) on its own.
ROLES = ("recognizer", "ngram", "chat", "voice")
# Which settings section decides each role.
ROLE_SECTION = {"recognizer": "asr", "ngram": "asr", "chat": "chat", "voice": "tts"}

ProgressFn = Callable[[str], None]


@dataclass
class Engines:
    recognizer: Any = None
    ngram: Any = None  # n-gram LM for rescoring, or None
    chat: Any = None
    synthesizer: Any = None
    voice: str = ""  # the voice (id or path) the synthesizer speaks with
    problems: dict[str, str] = field(default_factory=dict)  # role -> one line for the user
    scorer: Any = None  # the chat model as n-best scorer (lm.hypothesis_scorer), or None

    def rescorer(self, settings: Settings, context: Callable[[], Any] | None = None
                 ) -> Callable[[list[Any]], list[Any]]:
        """``context()``: the conversation so far, for the neural term (its last message
        is the bot's last reply)."""
        from voicebot.asr.rescoring import Weights, rescore

        weights = Weights.from_settings(settings.asr)
        return lambda hypotheses: rescore(
            hypotheses, self.ngram, weights, neural=self.scorer,
            context=context() if context is not None and self.scorer is not None
            else None).hypotheses

    @property
    def can_reply(self) -> bool:
        return self.chat is not None

    def message(self) -> str:
        """All problems, one sentence each ("" when everything loaded)."""
        return " ".join(self.problems.values())


def one_line(exc: BaseException, folder: str | Path | None = None) -> str:
    """An exception as one short line for the status bar; paths inside ``folder`` (the
    voice the user picked, already named) are shortened to their file names."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    if folder and Path(folder).is_dir():
        text = text.replace(str(Path(folder)) + os.sep, "")
    return text if len(text) <= 160 else text[:157] + "…"


def voice_label(voice: str) -> str:
    """A voice as the user knows it: "<voice name> (<run>)" for a trained run folder."""
    path = Path(voice)
    if path.parent.name == "runs" and path.parent.parent.name:
        return f"{path.parent.parent.name} ({path.name})"
    return path.name or voice


# ----- the settings the engines were loaded from ------------------------------------------
def model_settings(settings: Settings) -> dict[str, Any]:
    """A snapshot of the sections that decide the engines (compared to know what to
    reload)."""
    return {section: copy.deepcopy(getattr(settings, section))
            for section in ("asr", "chat", "tts")}


def reload_roles(settings: Settings, loaded_from: dict[str, Any]) -> tuple[str, ...]:
    """The roles whose settings changed since ``loaded_from`` (the voice excepted: it is
    switched beside the running conversation)."""
    return tuple(role for role, section in ROLE_SECTION.items()
                 if section != "tts" and getattr(settings, section) != loaded_from[section])


def settle_settings(settings: Settings, engines: Engines, loaded_from: dict[str, Any]) -> bool:
    """Make ``settings`` say what really runs; True if they changed. A model setting that
    did not load while a previous engine was kept goes back to what that engine was
    loaded from; a saved voice that no longer loads becomes the voice that speaks
    instead, so a broken choice never persists."""
    changed = False
    for role, section in ROLE_SECTION.items():
        if role in engines.problems and role != "voice" and getattr(engines, role) \
                is not None and getattr(settings, section) != loaded_from[section]:
            setattr(settings, section, copy.deepcopy(loaded_from[section]))
            changed = True
    if engines.voice and settings.tts.voice != engines.voice:
        settings.tts.voice = engines.voice
        changed = True
    return changed


# ----- one engine each ----------------------------------------------------------------
def load_recognizer(settings: Settings, device: str = "auto") -> Any:
    """The recogniser, with the user's LoRA adapter when they trained one and switched it
    on."""
    from voicebot.asr.adapt import recognizer_from_settings_adapted
    from voicebot.memory import release_freed_memory

    recognizer = recognizer_from_settings_adapted(settings.asr, device=device,
                                                  threads=ASR_THREADS)
    # Loading's temporaries (the export's float32 weights the first time) and warm-up.
    release_freed_memory()
    return recognizer


def load_rescoring_lm(settings: Settings) -> Any:
    """The general n-gram LM, mixed with one built from the user's own words (prompts
    read, conversation history), so names they use are recognised more readily."""
    from voicebot.asr.adapt_vocab import ngram_with_user_lm, refresh_user_lm
    from voicebot.pipeline.history import load_history

    refresh_user_lm(load_history())
    return ngram_with_user_lm(settings.asr)


def load_hypothesis_scorer(settings: Settings) -> Any:
    """The chat model as n-best scorer when the settings switch the neural term on
    (``asr.neural_weight`` > 0): on the CPU its ONNX scoring graph, which costs ~80 ms per
    n-best on 2 threads of this 2-core CPU (``voicebot bench rescoring``). It runs
    between the final decode and the reply, when Whisper's threads are free."""
    if not settings.asr.neural_weight:
        return None
    from voicebot.lm.hypothesis_scorer import load_hypothesis_scorer as load

    return load(settings.chat.model, threads=SCORER_THREADS)


def load_chat(settings: Settings, device: str = "auto") -> Any:
    from voicebot.lm.loading import load_chat_model

    return load_chat_model(settings.chat.model, system_prompt=settings.chat.system_prompt,
                           max_reply_tokens=settings.chat.max_reply_tokens,
                           context_tokens=settings.chat.context_tokens, device=device,
                           threads=CHAT_THREADS)


def load_synthesizer(voice: str, device: str = "auto") -> Any:
    """A voice ready to speak in conversation (the conversation's thread budget)."""
    from voicebot.memory import release_freed_memory
    from voicebot.tts.voices import DEFAULT_VOICE, VoiceOptions, load_voice

    synthesizer = load_voice(voice or DEFAULT_VOICE, VoiceOptions(
        device=device, threads=TTS_THREADS, parallel_windows=TTS_PARALLEL_WINDOWS))
    release_freed_memory()
    return synthesizer


# ----- all of them ----------------------------------------------------------------------
def load_engines(settings: Settings, progress: ProgressFn | None = None,
                 device: str = "auto", roles: tuple[str, ...] = ROLES,
                 previous: Engines | None = None, strict: bool = True) -> Engines:
    """Load the engines the settings name.

    ``strict`` (benchmarks, tools): the first engine that fails raises. Otherwise (the
    app) each loads on its own and this never raises for an engine: one that fails keeps
    ``previous``'s engine when there is one, else it is left out, and ``problems`` says
    why in one line. ``roles``: which to (re)load; the others come from ``previous``.
    """
    from voicebot.tts.voices import DEFAULT_VOICE

    say = progress or (lambda message: None)
    # Problems of the roles not reloaded still hold.
    engines = (replace(previous, problems={role: line for role, line in previous.problems.items()
                                           if role not in roles})
               if previous is not None else Engines())

    def attempt(what: str, load: Callable[[], Any],
                folder: str | None = None) -> tuple[Any, str | None]:
        say(f"loading {what}")
        try:
            return load(), None
        except Exception as exc:  # any engine may fail; the others must still load
            if strict:
                raise
            log.exception("loading %s failed", what)
            return None, one_line(exc, folder)

    def load_or_keep(role: str, what: str, load: Callable[[], Any], without: str) -> None:
        value, error = attempt(what, load)
        if error is None:
            setattr(engines, role, value)
            return
        kept = getattr(engines, role) is not None
        engines.problems[role] = (f"{what[0].upper()}{what[1:]} could not be loaded "
                                  f"({error}); "
                                  + ("the previous one is kept." if kept else without))

    if "recognizer" in roles:
        load_or_keep("recognizer", "the speech recognizer",
                     lambda: load_recognizer(settings, device), "typing still works.")
    if "ngram" in roles:
        ngram, error = attempt("the rescoring language model",
                               lambda: load_rescoring_lm(settings))
        engines.ngram = ngram
        if error is not None:
            engines.problems["ngram"] = (f"The rescoring language model could not be loaded "
                                         f"({error}); recognition works without it.")
        engines.scorer, _ = attempt("the neural rescoring model",
                                    lambda: load_hypothesis_scorer(settings))
    if "chat" in roles:
        load_or_keep("chat", "the chat model", lambda: load_chat(settings, device),
                     "the bot cannot answer.")
    if "voice" in roles:
        wanted = settings.tts.voice or DEFAULT_VOICE
        synthesizer, error = attempt("the voice", lambda: load_synthesizer(wanted, device),
                                     folder=wanted)
        if error is None:
            engines.synthesizer, engines.voice = synthesizer, wanted
        else:
            problem = f"The voice {voice_label(wanted)} could not be loaded ({error});"
            if engines.synthesizer is not None:
                problem += " the previous voice keeps speaking."
            elif wanted != DEFAULT_VOICE:
                synthesizer, fallback_error = attempt(
                    "the default voice", lambda: load_synthesizer(DEFAULT_VOICE, device))
                if fallback_error is None:
                    engines.synthesizer, engines.voice = synthesizer, DEFAULT_VOICE
                    problem += " the default voice speaks instead."
                else:
                    problem += (f" nor the default voice ({fallback_error}); replies are "
                                "shown as text.")
            else:
                problem += " replies are shown as text."
            engines.problems["voice"] = problem
    say("ready")
    return engines


class _PreparesScorer:
    """The conversation's listener, which also computes the neural scorer's context
    (``HypothesisScorer.prepare``) when a turn has finished, so that the next n-best
    costs only its own tokens (~0.2 s less between release and the reply)."""

    def __init__(self, inner: ConversationListener, scorer: Any,
                 history: Callable[[], Any]) -> None:
        self.inner, self.scorer, self.history = inner, scorer, history

    def __getattr__(self, name: str) -> Any:  # every other event goes to the listener
        return getattr(self.inner, name)

    def turn_finished(self, turn: Any) -> None:
        self.inner.turn_finished(turn)
        # Not a daemon: the interpreter waits for it (~0.1-0.2 s) at exit. A daemon thread
        # still inside ONNX Runtime as the process tore the library down aborted `bench
        # turn` ("terminate called without an active exception") in 2 of 2 runs with a
        # one-thread scorer, which leaves it in flight longer.
        threading.Thread(target=self._prepare, args=(self.history(),),
                         name="scorer-prepare", daemon=False).start()

    def _prepare(self, history: Any) -> None:
        try:
            self.scorer.prepare(history)
        except Exception:  # the next n-best computes it itself
            log.exception("preparing the neural rescoring context failed")


def build_conversation(settings: Settings, engines: Engines, *, player: Any,
                       mic: Any = None, listener: ConversationListener | None = None,
                       ) -> Conversation:
    """``mic``: the 16 kHz ring buffer of a running Capture (None: typed turns only).

    Without a recognizer turns are typed only; without a voice replies are text only."""
    from voicebot.lm.speech_shaping import ClauseSplitter

    if engines.chat is None:
        raise ValueError("no chat model is loaded: a conversation cannot start")
    recognizer = engines.recognizer if mic is not None else None
    if engines.scorer is not None:
        listener = _PreparesScorer(listener or ConversationListener(), engines.scorer,
                                   lambda: list(conversation.history))
    conversation = Conversation(
        chat=engines.chat, synthesizer=engines.synthesizer,
        player=player if engines.synthesizer is not None else None,
        splitter_factory=ClauseSplitter, recognizer=recognizer,
        mic=mic if recognizer is not None else None, listener=listener,
        nbest=settings.asr.nbest, speculate=settings.chat.speculative_start)
    # The neural term reads the conversation so far (the bot's last reply last).
    conversation.rescore = engines.rescorer(settings, lambda: list(conversation.history))
    return conversation
