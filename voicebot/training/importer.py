"""Import an existing folder of recordings into a voice dataset, with a report.

Two layouts are understood:

- LJSpeech: ``metadata.csv`` (``id|text[|normalized text]``) with ``wavs/<id>.wav`` (or
  ``<id>.wav`` beside the metadata);
- pairs: ``<name>.wav`` with ``<name>.txt`` holding its transcript.

Every clip is validated and checked like a recorded take; what cannot be used is listed
with the reason, never raised. Nothing is written outside the dataset folder: ids from a
metadata file that would escape the source folder (``../x``, absolute paths) are
rejected, and the stored files get ids of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from voicebot.audio.wav_io import AudioFileError, read_wav
from voicebot.training.dataset import SAMPLE_RATE, VoiceDataset, clean_text, read_metadata

MIN_SOURCE_RATE = 16_000  # below this the voice would sound muffled
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass
class ImportReport:
    accepted: list[str] = field(default_factory=list)  # stored take ids
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (source name, reason)
    notes: list[tuple[str, str]] = field(default_factory=list)  # converted, not rejected

    def text(self) -> str:
        lines = [f"Imported {len(self.accepted)} recordings, rejected {len(self.rejected)}."]
        lines += [f"  rejected {name}: {reason}" for name, reason in self.rejected]
        lines += [f"  note {name}: {note}" for name, note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"accepted": self.accepted,
                "rejected": [{"file": n, "reason": r} for n, r in self.rejected],
                "notes": [{"file": n, "note": r} for n, r in self.notes]}


def find_pairs(source: Path, report: ImportReport) -> list[tuple[str, Path | None, str]]:
    """(name, wav path or None, transcript) for each clip the folder describes."""
    metadata = source / "metadata.csv"
    items: list[tuple[str, Path | None, str]] = []
    if metadata.is_file():
        root = source.resolve()
        for clip_id, text in read_metadata(metadata):
            if not _SAFE_ID.match(clip_id) or ".." in clip_id:
                report.rejected.append((clip_id, "unsafe id in metadata.csv (a path outside "
                                                 "the folder, or odd characters)"))
                continue
            wav = next((p for p in (source / "wavs" / f"{clip_id}.wav",
                                    source / f"{clip_id}.wav") if p.is_file()), None)
            if wav is not None and root not in wav.resolve().parents:
                report.rejected.append((clip_id, "the file is a link outside the folder"))
                continue
            items.append((clip_id, wav, text))
        return items
    for wav in sorted(source.glob("*.wav")) + sorted(source.glob("wavs/*.wav")):
        transcript = wav.with_suffix(".txt")
        if not transcript.is_file():
            report.rejected.append((wav.name, f"no transcript: expected {transcript.name}"))
            continue
        try:
            text = transcript.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            report.rejected.append((wav.name, f"transcript unreadable: {exc}"))
            continue
        items.append((wav.name, wav, text))
    for txt in sorted(source.glob("*.txt")):
        if not txt.with_suffix(".wav").exists():
            report.rejected.append((txt.name, f"no recording: expected {txt.stem}.wav"))
    return items


def import_folder(source: Path, dataset: VoiceDataset, checker=None, *,
                  id_prefix: str = "import") -> ImportReport:
    """Check and copy every usable clip of ``source`` into ``dataset``."""
    source = Path(source)
    report = ImportReport()
    if not source.is_dir():
        report.rejected.append((str(source), "not a folder"))
        return report
    items = find_pairs(source, report)
    if not items and not report.rejected:
        report.rejected.append((str(source), "no metadata.csv and no .wav files"))
    for name, wav, raw_text in items:
        text = clean_text(raw_text)
        if wav is None:
            report.rejected.append((name, "listed in metadata.csv but its .wav is missing"))
            continue
        if not text:
            report.rejected.append((name, "the transcript is empty"))
            continue
        try:
            data = read_wav(wav, mono=False)
        except AudioFileError as exc:
            report.rejected.append((name, f"unreadable audio ({exc})"))
            continue
        if data.sample_rate < MIN_SOURCE_RATE:
            report.rejected.append((name, f"sample rate {data.sample_rate} Hz is too low "
                                          f"(at least {MIN_SOURCE_RATE} Hz needed)"))
            continue
        samples = data.samples
        if samples.ndim == 2:
            if samples.shape[1] > 1:
                report.notes.append((name, f"{samples.shape[1]} channels mixed to mono"))
            samples = samples.mean(axis=1)
        if data.sample_rate != SAMPLE_RATE:
            report.notes.append((name, f"resampled from {data.sample_rate} Hz"))
        check = None
        if checker is not None:
            result = checker.check(samples, data.sample_rate)
            if not result.ok:
                report.rejected.append((name, " ".join(result.reasons)))
                dataset.note_rejected(text, result.to_dict(), source=name)
                continue
            samples, check = result.trimmed, result.to_dict()
        take_id = _free_id(dataset, id_prefix)
        dataset.add_take(take_id, text, samples, data.sample_rate, check=check, source=name)
        report.accepted.append(take_id)
    return report


def _free_id(dataset: VoiceDataset, prefix: str) -> str:
    number = len(dataset.takes) + 1
    while f"{prefix}_{number:05d}" in dataset.takes:
        number += 1
    return f"{prefix}_{number:05d}"
