"""Word error rate of a recogniser (plus rescoring) over a manifest of utterances.

A manifest is a text file with one utterance per line: an audio path, a tab (or
whitespace), then the reference text. Relative paths are relative to the manifest's
folder; blank lines and lines starting with # are skipped.

``pocketsphinx_testdata()`` lists the real recorded English speech of Debian's
pocketsphinx-testdata package (5 LibriVox sentences, 5 "cards" commands), the set the
tests and the default weights use.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from voicebot.asr.audio_input import read_audio_file
from voicebot.asr.recognizer import Hypothesis, Recognizer
from voicebot.asr.rescoring import RescoredNBest, Weights, rescore
from voicebot.asr.wer import ErrorCounts, count_errors
from voicebot.audio.resample import ASR_RATE

POCKETSPHINX_TESTDATA = Path("/usr/share/pocketsphinx/test/data")


@dataclass
class Utterance:
    audio: Path
    reference: str


@dataclass
class UtteranceResult:
    utterance: Utterance
    nbest: list[Hypothesis]
    rescored: RescoredNBest
    seconds: float  # decode time
    audio_seconds: float


@dataclass
class EvalReport:
    results: list[UtteranceResult] = field(default_factory=list)

    def summary(self) -> dict:
        first, chosen = ErrorCounts(), ErrorCounts()
        for r in self.results:
            ref = r.utterance.reference
            first.add(count_errors(ref, r.nbest[0].text if r.nbest else ""))
            chosen.add(count_errors(ref, r.rescored.text))
        audio = sum(r.audio_seconds for r in self.results)
        return {
            "wer": round(chosen.wer, 4),
            "wer_1best": round(first.wer, 4),
            "wer_rescored": round(chosen.wer, 4),
            "rtf": round(sum(r.seconds for r in self.results) / audio, 4) if audio else None,
            "n_utts": len(self.results),
            "n_words": first.ref_words,
        }


def read_manifest(path: str | Path) -> list[Utterance]:
    path = Path(path)
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t", 1) if "\t" in line else line.split(None, 1)
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected 'AUDIO<TAB>REFERENCE TEXT'")
        audio = Path(parts[0].strip())
        if not audio.is_absolute():
            audio = path.parent / audio
        items.append(Utterance(audio, parts[1].strip()))
    return items


def write_manifest(items: list[Utterance], path: str | Path) -> Path:
    path = Path(path)
    path.write_text("".join(f"{u.audio}\t{u.reference}\n" for u in items), encoding="utf-8")
    return path


def _sphinx_transcripts(path: Path, audio_dir: Path) -> list[Utterance]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\(([^)]+)\)\s*$", line)
        if match:
            items.append(Utterance(audio_dir / f"{match.group(2)}.wav",
                                   " ".join(match.group(1).split())))
    return items


def pocketsphinx_testdata(root: Path = POCKETSPHINX_TESTDATA) -> list[Utterance]:
    """The transcribed real-speech utterances of pocketsphinx-testdata (may be empty)."""
    items: list[Utterance] = []
    if (root / "librivox" / "transcription").is_file():
        items += _sphinx_transcripts(root / "librivox" / "transcription", root / "librivox")
    if (root / "cards" / "cards.transcription").is_file():
        items += _sphinx_transcripts(root / "cards" / "cards.transcription", root / "cards")
    return [u for u in items if u.audio.is_file()]


def recognize_file(recognizer: Recognizer, audio, nbest: int) -> tuple[list[Hypothesis], float]:
    """Feed a whole utterance in one block; returns the n-best and the decode time."""
    started = time.perf_counter()
    recognizer.feed(audio)
    hyps = recognizer.finish(nbest)
    return hyps, time.perf_counter() - started


def evaluate(recognizer: Recognizer, utterances: list[Utterance], lm=None,
             weights: Weights | None = None, nbest: int = 5) -> EvalReport:
    weights = weights or Weights()
    report = EvalReport()
    for utt in utterances:
        audio = read_audio_file(utt.audio)
        hyps, seconds = recognize_file(recognizer, audio, nbest)
        report.results.append(UtteranceResult(utt, hyps, rescore(hyps, lm, weights), seconds,
                                              len(audio) / ASR_RATE))
    return report
