"""Did the user read the prompt? Whisper transcribes a take; the words are compared.

A take of another sentence (a misread line, the previous prompt read again, a skipped
clause) would teach the voice wrong sounds for the prompt's text. Each take is
transcribed by the app's recogniser and compared with its prompt word by word, after
``voicebot.text.scoring.for_scoring`` (case, punctuation and numbers do not count:
"10 of clubs." matches "ten of clubs").

Whisper tiny.en often drops an ending ("whistled" heard as "whistle", "argued" as
"argue", even from the embedded voice reading the prompt): words that differ only by a
short ending (``same_word``) count as the same. Beyond that it gets about one word in ten
wrong on clean read speech, and short phrases worst (measured on the pocketsphinx-testdata
recordings: 0-2 errors per sentence, "seven of clubs" heard as "7-0 clubs"). So a take
is flagged as misread only when the difference is larger than that noise: at least
``MISREAD_MIN_ERRORS`` word errors and at least ``MISREAD_WER`` of the prompt's words.
Smaller differences are still reported (the user may want to listen), but the take is
kept.

GUI-free; the wizard runs ``check_take`` off the GUI thread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from voicebot.audio.resample import ASR_RATE
from voicebot.text.scoring import words_for_scoring

MISREAD_MIN_ERRORS = 2
MISREAD_WER = 0.3
# A differing run longer than this is another sentence, not a slip: the user sees what
# Whisper heard in full, so the run names only the prompt's words.
LONG_RUN_WORDS = 4
# Endings Whisper drops or adds: up to this many letters, on words this long.
ENDING_LETTERS = 3
STEM_LETTERS = 4


@dataclass
class WordDiff:
    """One run of differing words: ``expected`` (prompt) vs ``heard``; either may be ""."""

    expected: str
    heard: str

    def text(self) -> str:
        if not self.heard:
            return f"missing “{self.expected}”"
        if not self.expected:
            return f"extra “{self.heard}”"
        if len(self.heard.split()) > LONG_RUN_WORDS:  # another sentence: shown whole already
            return f"“{self.expected}” not heard"
        return f"“{self.expected}” heard as “{self.heard}”"


@dataclass
class TakeTranscript:
    prompt: str
    heard: str
    errors: int  # word substitutions + deletions + insertions
    words: int  # words in the prompt
    diffs: list[WordDiff] = field(default_factory=list)

    @property
    def wer(self) -> float:
        return self.errors / self.words if self.words else float(self.errors > 0)

    @property
    def misread(self) -> bool:
        return self.errors >= MISREAD_MIN_ERRORS and self.wer >= MISREAD_WER

    def differences(self, most: int = 4) -> str:
        """The differing words in a short phrase ("" when the words match)."""
        parts = [d.text() for d in self.diffs[:most]]
        if len(self.diffs) > most:
            parts.append(f"{len(self.diffs) - most} more")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(wer=round(self.wer, 3), misread=self.misread)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TakeTranscript:
        return cls(str(data.get("prompt", "")), str(data.get("heard", "")),
                   int(data.get("errors", 0)), int(data.get("words", 0)),
                   [WordDiff(**d) for d in data.get("diffs", [])])


def same_word(a: str, b: str) -> bool:
    """Equal, or one is the other plus a short ending (-d, -ed, -s, -ing...), both
    words of at least ``STEM_LETTERS`` letters."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return (len(short) >= STEM_LETTERS and long.startswith(short)
            and len(long) - len(short) <= ENDING_LETTERS)


def align(expected: list[str], heard: list[str]) -> list[tuple[str, str]]:
    """A minimum-edit alignment: (expected word or "", heard word or "") pairs."""
    rows, cols = len(expected) + 1, len(heard) + 1
    cost = np.zeros((rows, cols), dtype=np.int32)
    cost[:, 0] = np.arange(rows)
    cost[0, :] = np.arange(cols)
    for i in range(1, rows):
        for j in range(1, cols):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1,
                             cost[i - 1, j - 1] + (not same_word(expected[i - 1],
                                                                 heard[j - 1])))
    pairs: list[tuple[str, str]] = []
    i, j = rows - 1, cols - 1
    # Among equally short paths: a match first, then a missing or extra word, and a
    # substitution last, so words that were said are shown as said.
    while i or j:
        same = i and j and same_word(expected[i - 1], heard[j - 1])
        if same and cost[i, j] == cost[i - 1, j - 1]:
            pairs.append((expected[i - 1], heard[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i, j] == cost[i - 1, j] + 1:
            pairs.append((expected[i - 1], ""))
            i -= 1
        elif j and cost[i, j] == cost[i, j - 1] + 1:
            pairs.append(("", heard[j - 1]))
            j -= 1
        else:
            pairs.append((expected[i - 1], heard[j - 1]))
            i, j = i - 1, j - 1
    return pairs[::-1]


def compare(prompt: str, heard: str) -> TakeTranscript:
    """How the words heard differ from the prompt's (normalized for scoring)."""
    expected, got = words_for_scoring(prompt), words_for_scoring(heard)
    diffs: list[WordDiff] = []
    errors = 0
    run_expected: list[str] = []
    run_heard: list[str] = []
    for want, said in [*align(expected, got), ("=", "=")]:  # a sentinel closes the last run
        if want and said and same_word(want, said):
            if run_expected or run_heard:
                diffs.append(WordDiff(" ".join(run_expected), " ".join(run_heard)))
                run_expected, run_heard = [], []
            continue
        errors += 1
        if want:
            run_expected.append(want)
        if said:
            run_heard.append(said)
    return TakeTranscript(prompt, heard, errors, len(expected), diffs)


def transcribe(recognizer: Any, samples: np.ndarray, sample_rate: int) -> str:
    """The recogniser's best text for a whole take (any rate; mono float)."""
    audio = np.asarray(samples, dtype=np.float32)
    if sample_rate != ASR_RATE:
        import soxr

        audio = soxr.resample(audio, sample_rate, ASR_RATE).astype(np.float32)
    recognizer.reset()
    recognizer.feed(audio)
    hypotheses = recognizer.finish(1)
    return hypotheses[0].text.strip() if hypotheses else ""


def check_take(recognizer: Any, prompt: str, samples: np.ndarray,
               sample_rate: int) -> TakeTranscript:
    return compare(prompt, transcribe(recognizer, samples, sample_rate))


def take_recognizer(app_recognizer: Any = None, asr_settings: Any = None) -> Any:
    """A recogniser of its own for checking takes (one utterance at a time each).

    It shares the Whisper model the app already loaded (``app_recognizer``'s, with the
    user's adapter if one is on), so nothing is loaded twice; the model's own lock keeps
    a conversation turn and a take check from running it at the same moment. Without
    one (the conversation is still loading, or it recognises with Vosk) the settings'
    Whisper model is loaded, or tiny.en: prompts are English."""
    from voicebot.asr.whisper_engine import WhisperRecognizer, load_whisper

    model = getattr(app_recognizer, "model", None)
    if not isinstance(app_recognizer, WhisperRecognizer) or model is None:
        model_id = getattr(asr_settings, "model", "") or ""
        model = load_whisper(model_id if model_id.startswith("whisper") else
                             "whisper-tiny-en")
    return WhisperRecognizer(model, nbest=1, streaming=False)
