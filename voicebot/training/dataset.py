"""A voice's recordings on disk, in the LJSpeech layout Coqui's recipes read.

::

    <voices dir>/<voice name>/
        wavs/<take id>.wav     22.05 kHz mono 16-bit PCM, trimmed to the speech
        metadata.csv           "<take id>|<text>|<text>" per take to train on
        takes.json             every take's check result, accepted or rejected, and what
                               Whisper heard in it
        runs/                  training runs (checkpoints, previews, logs)

Durability: a take's WAV is written to a temporary file, fsynced and renamed into place
(``voicebot.audio.wav_io``) before the metadata that names it is rewritten the same way.
A crash at any moment leaves every earlier take and a consistent metadata file: at worst
a WAV of the take being saved with no metadata line, which loading ignores.

A take Whisper heard as a different sentence (``voicebot.training.take_transcript``) stays
on disk and in takes.json but is left out of metadata.csv, so no trainer learns from it,
until it is recorded again or the user keeps it anyway.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voicebot.atomic_write import write_text_atomic
from voicebot.audio.resample import TRAINING_RATE
from voicebot.audio.wav_io import write_wav_atomic
from voicebot.paths import user_dirs
from voicebot.training.heldout import split_heldout

SAMPLE_RATE = TRAINING_RATE
# Below these the Train button waits. Training always adapts a base voice (a downloaded
# Coqui Tacotron2, or the base the trainer builds once from the embedded Piper voice, no
# download needed), never starts from nothing, and adapting a Tacotron2 to a new speaker
# takes minutes of speech, not hours. 5 minutes is about 80 prompts of the set (3.6 s
# each on average; all 216 give ~13 minutes, which the summary recommends). 30 takes is
# the floor for any speech length (imported long clips): a tenth of them (3 or more
# sentences) is held out to score the voice, and batches still get shuffled variety.
MIN_MINUTES = 5.0
MIN_TAKES = 30
RECOMMENDED_MINUTES = 12.0
_NAME = re.compile(r"^[\w][\w .'-]{0,63}$")
_TAKE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


class DatasetError(ValueError):
    """Bad voice name, unreadable dataset, or a take that cannot be stored."""


def check_voice_name(name: str) -> str:
    """The name, stripped; raises with the reason when it cannot be a folder name."""
    name = (name or "").strip()
    if not name:
        raise DatasetError("give the voice a name")
    if not _NAME.match(name) or name in (".", ".."):
        raise DatasetError("a voice name uses letters, digits, spaces, dots, dashes and "
                           "underscores (up to 64), and starts with a letter or digit")
    return name


def voices_dir() -> Path:

    return user_dirs().voices


def list_voices() -> list[str]:
    root = voices_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "takes.json").is_file()
                  or (p / "metadata.csv").is_file())


def clean_text(text: str) -> str:
    """One line of transcript: no pipes (the column separator) or line breaks."""
    return " ".join(str(text).replace("|", " ").split())


@dataclass
class Take:
    id: str
    text: str
    duration_s: float
    check: dict = field(default_factory=dict)
    prompt_index: int | None = None
    source: str = "recorded"  # or the imported file's name
    # What Whisper heard (``take_transcript.TakeTranscript.to_dict``); None: not checked.
    transcript: dict | None = None

    @property
    def misread(self) -> bool:
        """Whisper heard another sentence, and the user has not kept it anyway."""
        t = self.transcript or {}
        return bool(t.get("misread")) and not t.get("kept")


@dataclass
class DatasetSummary:
    takes: int
    minutes: float
    rejected: int
    phoneme_coverage: float | None
    diphone_coverage: float | None
    min_minutes: float
    min_takes: int
    misread: int = 0  # takes left out of training until re-recorded (or kept anyway)
    heldout: int = 0  # of ``takes``: never trained on, kept to score the voice
    unchecked: int = 0  # takes Whisper has not heard yet

    @property
    def ready(self) -> bool:
        return self.minutes >= self.min_minutes and self.takes >= self.min_takes

    def missing(self) -> str:
        """What is still needed before training, in words ('' when ready)."""
        if self.ready:
            return ""
        needs = []
        if self.minutes < self.min_minutes:
            needs.append(f"{self.min_minutes - self.minutes:.1f} more minutes of speech")
        if self.takes < self.min_takes:
            needs.append(f"{self.min_takes - self.takes} more takes")
        return " and ".join(needs)

    def to_dict(self) -> dict:
        return {"takes": self.takes, "minutes": round(self.minutes, 2),
                "rejected": self.rejected, "phoneme_coverage": self.phoneme_coverage,
                "diphone_coverage": self.diphone_coverage, "min_minutes": self.min_minutes,
                "min_takes": self.min_takes, "misread": self.misread,
                "heldout": self.heldout, "unchecked": self.unchecked, "ready": self.ready}


class VoiceDataset:
    """The recordings of one voice; every change is saved before the method returns."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.wavs = self.folder / "wavs"
        self.metadata_file = self.folder / "metadata.csv"
        self.takes_file = self.folder / "takes.json"
        self.takes: dict[str, Take] = {}
        self.rejected: list[dict] = []
        if self.takes_file.is_file():
            self._load_takes()
        elif self.metadata_file.is_file():
            self._adopt_metadata()

    @classmethod
    def create(cls, name: str, root: Path | None = None) -> VoiceDataset:
        """Open the voice ``name`` under the voices folder, creating it if needed."""
        folder = (root or voices_dir()) / check_voice_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def runs_dir(self) -> Path:
        return self.folder / "runs"

    # ----- reading ----------------------------------------------------------------
    def _load_takes(self) -> None:
        try:
            data = json.loads(self.takes_file.read_text(encoding="utf-8"))
            takes = [Take(**t) for t in data.get("takes", [])]
        except (OSError, ValueError, TypeError) as exc:
            raise DatasetError(f"{self.takes_file} is unreadable: {exc}") from exc
        # A take whose WAV is gone (deleted by hand) is not offered for training.
        self.takes = {t.id: t for t in takes if (self.wavs / f"{t.id}.wav").is_file()}
        self.rejected = list(data.get("rejected", []))

    def _adopt_metadata(self) -> None:
        """A plain LJSpeech folder (no takes.json): take its metadata as it is."""
        import soundfile as sf

        for take_id, text in read_metadata(self.metadata_file):
            wav = self.wavs / f"{take_id}.wav"
            if _TAKE_ID.match(take_id) and wav.is_file():
                with contextlib.suppress(RuntimeError, sf.LibsndfileError):
                    self.takes[take_id] = Take(take_id, text, sf.info(wav).duration)

    def wav_path(self, take_id: str) -> Path:
        if not _TAKE_ID.match(take_id):
            raise DatasetError(f"invalid take id {take_id!r}")
        return self.wavs / f"{take_id}.wav"

    def take_for_prompt(self, prompt_index: int) -> Take | None:
        return next((t for t in self.takes.values() if t.prompt_index == prompt_index), None)

    def training_takes(self) -> list[Take]:
        """The takes metadata.csv lists, in its order: all but the misread ones."""
        return [t for t in sorted(self.takes.values(), key=lambda t: t.id) if not t.misread]

    # ----- writing ----------------------------------------------------------------
    def add_take(self, take_id: str, text: str, samples: np.ndarray, sample_rate: int, *,
                 check: dict | None = None, prompt_index: int | None = None,
                 source: str = "recorded") -> Take:
        """Store an accepted take (replacing one with the same id), durably."""
        text = clean_text(text)
        if not text:
            raise DatasetError("a take needs its transcript")
        audio = np.asarray(samples, dtype=np.float32)
        if audio.ndim != 1 or audio.size == 0:
            raise DatasetError("a take is non-empty mono audio")
        if sample_rate != SAMPLE_RATE:
            import soxr

            audio = soxr.resample(audio, sample_rate, SAMPLE_RATE).astype(np.float32)
        write_wav_atomic(self.wav_path(take_id), audio, SAMPLE_RATE)
        take = Take(take_id, text, len(audio) / SAMPLE_RATE, dict(check or {}),
                    prompt_index, source)
        self.takes[take_id] = take
        self.save()
        return take

    def note_rejected(self, text: str, check: dict, *, prompt_index: int | None = None,
                      source: str = "recorded") -> None:
        """Remember a rejected take (its reasons, not its audio) for the summary."""
        self.rejected.append({"text": clean_text(text), "check": check,
                              "prompt_index": prompt_index, "source": source,
                              "time": time.time()})
        self.save()

    def set_transcript(self, take_id: str, transcript: dict) -> Take | None:
        """Record what Whisper heard in a take (None if the take is gone meanwhile)."""
        take = self.takes.get(take_id)
        if take is not None:
            take.transcript = dict(transcript)
            self.save()
        return take

    def keep_anyway(self, take_id: str) -> None:
        """The user says a flagged take was read right: train on it after all."""
        take = self.takes.get(take_id)
        if take is not None and take.transcript:
            take.transcript = {**take.transcript, "kept": True}
            self.save()

    def remove_take(self, take_id: str) -> None:
        if self.takes.pop(take_id, None) is not None:
            self.save()
            with contextlib.suppress(FileNotFoundError):
                self.wav_path(take_id).unlink()

    def save(self) -> None:
        ordered = sorted(self.takes.values(), key=lambda t: t.id)
        write_text_atomic(self.metadata_file,
                          "".join(f"{t.id}|{t.text}|{t.text}\n" for t in ordered
                                  if not t.misread))
        data = {"version": 1, "sample_rate": SAMPLE_RATE,
                "takes": [t.__dict__ for t in ordered], "rejected": self.rejected}
        write_text_atomic(self.takes_file, json.dumps(data, indent=1, ensure_ascii=False))

    # ----- summary ----------------------------------------------------------------
    def summary(self, *, min_minutes: float = MIN_MINUTES, min_takes: int = MIN_TAKES,
                coverage: bool = True) -> DatasetSummary:
        """What training would use: the takes not flagged as misread."""

        usable = self.training_takes()
        minutes = sum(t.duration_s for t in usable) / 60.0
        phonemes = diphones = None
        if coverage and usable:
            from voicebot.training.prompts import coverage_report

            report = coverage_report([t.text for t in usable])
            phonemes = report.get("phoneme_coverage")
            diphones = report.get("diphone_coverage_weighted")
        _train, heldout = split_heldout(usable)
        return DatasetSummary(len(usable), minutes, len(self.rejected), phonemes, diphones,
                              min_minutes, min_takes,
                              misread=len(self.takes) - len(usable), heldout=len(heldout),
                              unchecked=sum(1 for t in usable if t.transcript is None))


def read_metadata(path: Path) -> list[tuple[str, str]]:
    """(id, text) rows of an LJSpeech metadata.csv; the normalized column wins if given."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        text = parts[2] if len(parts) > 2 and parts[2].strip() else \
            (parts[1] if len(parts) > 1 else "")
        rows.append((parts[0].strip(), text.strip()))
    return rows


def prompt_texts(folder: str | Path) -> list[str]:
    """The prompts read in an LJSpeech-layout folder (empty when it has no metadata)."""
    metadata = Path(folder) / "metadata.csv"
    return [text for _, text in read_metadata(metadata)] if metadata.is_file() else []


def trained_voices(root: Path | None = None) -> list[dict]:
    """Voices trained here: {"name", "path", "step"} per run folder holding a usable
    checkpoint (model_file.pth), newest run first within each voice.

    ``path`` is what ``voicebot.tts.voices.load_voice`` and ``settings.tts.voice`` take.
    """
    root = root or voices_dir()
    found = []
    for model_file in sorted(Path(root).glob("*/runs/*/model_file.pth"),
                             key=lambda p: p.stat().st_mtime, reverse=True):
        run = model_file.parent
        progress_log = run / "progress.jsonl"
        step = None
        if progress_log.is_file():
            for line in progress_log.read_text(encoding="utf-8", errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if record.get("event") == "checkpoint":
                        step = record.get("step")
        found.append({"name": f"{run.parent.parent.name} ({run.name})", "path": str(run),
                      "step": step})
    return found
