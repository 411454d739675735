"""Typed user settings, stored as JSON in the user config dir.

The file carries a schema version. Older files are upgraded by the functions in
``MIGRATIONS``; a file that cannot be read (corrupt JSON, wrong types, a version from a
newer voicebot) is copied aside as ``settings.json.bak-<time>`` and replaced by the
defaults, with a warning in the log. Settings never stop the app from starting.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicebot.atomic_write import write_text_atomic
from voicebot.paths import user_dirs

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

DEFAULT_SYSTEM_PROMPT = (
    "You are Voicebot, a friendly assistant that talks with the user out loud. "
    "Answer in one to three short, plain sentences that sound natural when spoken. "
    "Never use lists, markdown, code, emoji or URLs. "
    "If you do not know something, say so briefly."
)


@dataclass
class AudioSettings:
    input_device: str = ""  # device name; "" means the system default
    output_device: str = ""
    headset_mode: bool = False  # listen while the bot speaks (no echo to fear)
    hands_free: bool = False  # VAD decides when a turn starts and ends
    # Hands-free end of turn (voicebot.audio.turn_end, voicebot.lm.turn_text; chosen by
    # `voicebot bench endpoint`, seeds 17 and 29). After turn_end_complete_ms of silence
    # the partial transcript's P(finished) (and Smart Turn's, with turn_end_model; their
    # log-odds added, the model's weighted turn_end_model_weight) sets the wait: at or above
    # turn_end_threshold the turn ends there, below it the wait grows to
    # turn_end_incomplete_ms at turn_end_unfinished; a transcript that lags the speech by
    # more than turn_end_text_lag_ms counts as turn_end_unknown_text; the model is asked
    # again every turn_end_recheck_ms of a long pause (0: once). turn_end_learned off, or
    # neither model nor transcript available: a turn ends after silence_end_ms of silence.
    turn_end_learned: bool = True
    turn_end_model: bool = False  # Smart Turn: more cut-offs on the bench, not fewer
    turn_end_text: bool = True
    turn_end_complete_ms: float = 250.0
    turn_end_incomplete_ms: float = 2000.0
    turn_end_threshold: float = 0.7  # P(finished) that ends the turn at once
    turn_end_unfinished: float = 0.3
    turn_end_unknown_text: float = 0.3
    turn_end_text_lag_ms: float = 150.0
    turn_end_recheck_ms: float = 0.0
    turn_end_model_weight: float = 1.0
    # Who judges whether the words so far can end the turn: "ngram" (the trigram) or
    # "chat" (the chat model, needs asr.neural_weight > 0 for its scorer; ~0.1 s a partial).
    turn_end_text_model: str = "ngram"
    silence_end_ms: float = 700.0
    # Push-to-talk, on screen and idle: stop the microphone and speaker streams after this
    # many seconds (reopened by the talk button or a typed message); 0: keep them open.
    rest_after_s: float = 5.0


@dataclass
class AsrSettings:
    engine: str = "whisper"  # "whisper" or "vosk"
    model: str = "whisper-tiny-en"
    nbest: int = 5
    # Tuned on the pocketsphinx test recordings (voicebot asr-eval --tune); see
    # voicebot.asr.rescoring.TUNED_WEIGHTS.
    acoustic_weight: float = 1.0
    lm_weight: float = 0.05
    word_bonus: float = 0.0
    ngram_model: str = "pocketsphinx-en-us-lm"
    adapter: str = ""  # folder of a LoRA adapter from `voicebot train asr`; "" = off
    # The chat model re-ranks the n-best by what the conversation makes likely (0 = off):
    # voicebot.asr.rescoring.NEURAL_WEIGHT, chosen by `voicebot bench rescoring` (context
    # sets better, no plain set worse); ~80 ms per n-best on the CPU's ONNX scorer.
    neural_weight: float = 0.1


@dataclass
class ChatSettings:
    model: str = "smollm2-135m-instruct"
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    max_reply_tokens: int = 120
    context_tokens: int = 2048
    # Start the reply on the last partial transcript once the user pauses, keep it if the
    # final transcript has the same words (pipeline/speculation.py).
    speculative_start: bool = True


@dataclass
class TtsSettings:
    voice: str = "piper-en-us-joe-medium"


@dataclass
class UiSettings:
    geometry: str = ""  # base64 of QMainWindow.saveGeometry()
    window_state: str = ""
    last_tab: int = 0


@dataclass
class Settings:
    schema_version: int = SCHEMA_VERSION
    audio: AudioSettings = field(default_factory=AudioSettings)
    asr: AsrSettings = field(default_factory=AsrSettings)
    chat: ChatSettings = field(default_factory=ChatSettings)
    tts: TtsSettings = field(default_factory=TtsSettings)
    ui: UiSettings = field(default_factory=UiSettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class SettingsError(ValueError):
    """The stored settings cannot be turned into a ``Settings`` object."""


# Version N -> N+1 upgraders, applied in order to the raw dict. Add one whenever a field
# is renamed or its meaning changes, and bump SCHEMA_VERSION.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _check_type(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_type(value, option, where)
            except SettingsError:
                continue
        raise SettingsError(f"{where}: {value!r} is not {annotation}")
    expected = origin or annotation
    if expected is bool and not isinstance(value, bool):
        raise SettingsError(f"{where}: expected true/false, got {value!r}")
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise SettingsError(f"{where}: expected an integer, got {value!r}")
    if not isinstance(value, expected):
        raise SettingsError(f"{where}: expected {expected.__name__}, got {value!r}")
    return value


def _from_dict(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise SettingsError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue  # missing keys take their defaults (older files, hand edits)
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            kwargs[f.name] = _from_dict(hint, data[f.name], f"{where}.{f.name}")
        else:
            kwargs[f.name] = _check_type(data[f.name], hint, f"{where}.{f.name}")
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        log.warning("ignoring unknown settings keys in %s: %s", where, ", ".join(sorted(unknown)))
    return cls(**kwargs)


def settings_from_dict(data: Any) -> Settings:
    """Upgrade and validate a raw dict; raises SettingsError if it cannot be used."""
    if not isinstance(data, dict):
        raise SettingsError("settings file does not hold a JSON object")
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or version < 1:
        raise SettingsError(f"bad schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise SettingsError(
            f"settings were written by a newer voicebot (schema {version} > {SCHEMA_VERSION})"
        )
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](dict(data))
        version += 1
        data["schema_version"] = version
    return _from_dict(Settings, data, "settings")


def _backup(path: Path) -> Path:
    backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while backup.exists():
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        n += 1
    path.replace(backup)
    return backup


def load_settings(path: Path | None = None) -> Settings:
    """Read settings; never raises for a bad file (it is backed up and reset)."""
    path = path or user_dirs().settings_file
    if not path.exists():
        return Settings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return settings_from_dict(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, SettingsError) as exc:
        backup = _backup(path)
        log.warning("settings file %s could not be used (%s); saved it as %s and reset "
                    "to defaults", path, exc, backup.name)
        return Settings()


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write atomically: a crash mid-write never leaves a half file."""
    path = path or user_dirs().settings_file
    write_text_atomic(path, json.dumps(settings.to_dict(), indent=2, sort_keys=True) + "\n")
    return path
