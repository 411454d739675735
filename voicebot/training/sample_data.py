"""A small real-speech dataset for benchmarks and smoke runs: pocketsphinx's test clips.

Debian's ``pocketsphinx-testdata`` holds ten English recordings with transcripts (five
LibriVox sentences, five "cards" phrases, 16 kHz). ``build`` resamples them to
22.05 kHz into an LJSpeech folder.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTDATA = Path("/usr/share/pocketsphinx/test/data")
_LINE = re.compile(r"<s>(?P<text>.*)</s>\s*\((?P<id>[^)]+)\)")
_SETS = (("librivox", "transcription"), ("cards", "cards.transcription"))


def utterances(root: Path = TESTDATA) -> list[tuple[Path, str]]:
    """(wav path, transcript) of every test utterance; [] when the package is missing."""
    items = []
    for folder, transcripts in _SETS:
        file = root / folder / transcripts
        if not file.is_file():
            continue
        for line in file.read_text(encoding="utf-8").splitlines():
            match = _LINE.match(line.strip())
            if match:
                name = Path(match["id"]).name
                items.append((root / folder / f"{name}.wav", " ".join(match["text"].split())))
    return items


def build(folder: Path, root: Path = TESTDATA, max_seconds: float | None = None) -> Path:
    """Write the utterances (those up to ``max_seconds`` long, if given) as an LJSpeech
    dataset in ``folder``; returns it."""
    import soundfile as sf

    from voicebot.audio.wav_io import read_wav, write_wav_atomic

    items = [(wav, text) for wav, text in utterances(root)
             if max_seconds is None or sf.info(wav).duration <= max_seconds]
    if not items:
        raise FileNotFoundError(f"no test utterances under {root} "
                                "(Debian/Ubuntu: apt install pocketsphinx-testdata)")
    folder = Path(folder)
    rows = []
    for number, (wav, text) in enumerate(items):
        take_id = f"utt_{number:02d}"
        write_wav_atomic(folder / "wavs" / f"{take_id}.wav",
                         read_wav(wav, sample_rate=22050).samples, 22050)
        rows.append(f"{take_id}|{text}|{text}\n")
    (folder / "metadata.csv").write_text("".join(rows), encoding="utf-8")
    return folder
