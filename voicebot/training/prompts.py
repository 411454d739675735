"""Prompt sets and their phonetic coverage.

A prompt set is a UTF-8 text file, one sentence per line (``#`` starts a comment line),
in ``assets/prompts/<language>.txt``. Coverage is measured on espeak-ng's IPA (the same
phonemizer the voices use): which phonemes and which diphones (pairs of neighbouring
phonemes) the sentences contain, against a reference inventory computed once from a
pronouncing dictionary's word list (``python -m voicebot.training.prompts --reference``)
and stored beside the prompts, so the app never needs the dictionary at runtime.

Diphones are counted across word boundaries too: in connected speech "the end" has an
/ə-ɛ/ transition a voice must learn, but the reference (isolated words) only holds
word-internal pairs, so coverage against it is a lower bound of what the set teaches.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from voicebot.paths import assets_dir
from voicebot.tts.espeak import phonemize

STRESS_AND_MARKS = str.maketrans("", "", "ˈˌ-‿")
# espeak's en-us units written with more than one character; matched longest first.
MULTI_CHAR_UNITS = ("aɪə", "aʊə", "tʃ", "dʒ", "aɪ", "aʊ", "eɪ", "oʊ", "ɔɪ", "ɪə", "ɛə", "ʊə")
LENGTH_MARK = "ː"
# Reference phonemes rarer than this share of all phoneme tokens are left out (see below).
MIN_PHONEME_SHARE = 1e-4
COMBINING = re.compile(r"[\u0300-\u036f]")  # syllabic marks etc. belong to the letter before


class PromptSetError(ValueError):
    """A prompt file is missing, empty or unreadable."""


def prompts_dir() -> Path:
    return assets_dir() / "prompts"


def load_prompts(language: str = "en", path: Path | None = None) -> list[str]:
    """The prompt sentences of ``language`` (or of the file ``path``), in order."""
    file = Path(path) if path else prompts_dir() / f"{language}.txt"
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptSetError(f"cannot read the prompt set {file}: {exc}") from exc
    prompts = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if not prompts:
        raise PromptSetError(f"the prompt set {file} holds no sentences")
    return prompts


def split_phonemes(ipa_word: str) -> list[str]:
    """espeak IPA of one word -> phoneme units (stress removed, length kept)."""
    text = ipa_word.translate(STRESS_AND_MARKS)
    units: list[str] = []
    i = 0
    while i < len(text):
        unit = next((u for u in MULTI_CHAR_UNITS if text.startswith(u, i)), text[i])
        i += len(unit)
        # Length marks and combining diacritics modify the unit before them.
        while i < len(text) and (text[i] == LENGTH_MARK or COMBINING.match(text[i])):
            unit += text[i]
            i += 1
        units.append(unit)
    return units


def phonemize_words(text: str, voice: str = "en-us") -> list[list[str]]:
    """Phoneme units per word of ``text`` (clause breaks dropped)."""

    return [split_phonemes(word) for word in phonemize(text, voice).split() if word]


@dataclass
class Coverage:
    phonemes: dict[str, int] = field(default_factory=dict)
    diphones: dict[str, int] = field(default_factory=dict)
    word_internal_diphones: set[str] = field(default_factory=set)

    def add(self, words: list[list[str]]) -> None:
        flat = [unit for word in words for unit in word]
        for unit in flat:
            self.phonemes[unit] = self.phonemes.get(unit, 0) + 1
        for a, b in itertools.pairwise(flat):
            key = f"{a}-{b}"
            self.diphones[key] = self.diphones.get(key, 0) + 1
        for word in words:
            self.word_internal_diphones.update(
                f"{a}-{b}" for a, b in itertools.pairwise(word))


def measure(sentences: Iterable[str], voice: str = "en-us") -> Coverage:
    coverage = Coverage()
    for sentence in sentences:
        coverage.add(phonemize_words(sentence, voice))
    return coverage


def reference_file(language: str = "en") -> Path:
    return prompts_dir() / f"reference_{language}.json"


def load_reference(language: str = "en") -> dict:
    """{"phonemes": [...], "diphones": [...], "source": ...} or {} when not computed."""
    file = reference_file(language)
    if not file.is_file():
        return {}
    return json.loads(file.read_text(encoding="utf-8"))


def coverage_report(sentences: list[str], language: str = "en",
                    reference: dict | None = None) -> dict:
    """Counts and fractions of the reference phonemes/diphones that ``sentences`` hold."""
    reference = load_reference(language) if reference is None else reference
    found = measure(sentences)
    report = {"sentences": len(sentences), "phonemes": len(found.phonemes),
              "diphones": len(found.diphones)}
    if reference:
        ref_phonemes, ref_diphones = set(reference["phonemes"]), set(reference["diphones"])
        have_phonemes = ref_phonemes & set(found.phonemes)
        have_diphones = ref_diphones & set(found.diphones)
        report.update({
            "reference_phonemes": len(ref_phonemes),
            "phoneme_coverage": round(len(have_phonemes) / len(ref_phonemes), 4),
            "missing_phonemes": sorted(ref_phonemes - have_phonemes),
            "reference_diphones": len(ref_diphones),
            "diphone_coverage": round(len(have_diphones) / len(ref_diphones), 4),
            # Weighted by how often each diphone occurs in the reference word list: the
            # share of real transitions the set has an example of.
            "diphone_coverage_weighted": _weighted(reference.get("diphone_counts", {}),
                                                   have_diphones),
        })
    return report


def _weighted(counts: dict[str, int], have: set[str]) -> float | None:
    total = sum(counts.values())
    if not total:
        return None
    return round(sum(n for d, n in counts.items() if d in have) / total, 4)


def build_reference(word_list: Path, voice: str = "en-us", chunk: int = 400) -> dict:
    """Phonemes and word-internal diphones of every plain word in a CMU-style dictionary."""
    words = []
    for line in word_list.read_text(encoding="utf-8", errors="replace").splitlines():
        word = line.split(" ", 1)[0]
        if word.isalpha() and word.isascii():  # skips "word(2)" variants and symbols
            words.append(word)
    coverage = Coverage()
    internal_counts: dict[str, int] = {}
    # One espeak call per chunk of words (one call per word is ~20x slower); commas keep
    # espeak from running the words together.
    for start in range(0, len(words), chunk):
        phonemized = phonemize_words(", ".join(words[start:start + chunk]), voice)
        coverage.add(phonemized)
        for word in phonemized:
            for a, b in itertools.pairwise(word):
                key = f"{a}-{b}"
                internal_counts[key] = internal_counts.get(key, 0) + 1
    # Phonemes espeak uses only for a handful of foreign names (nasal vowels, /ɬ/) are
    # not English targets: a set cannot be asked to cover them.
    total = sum(coverage.phonemes.values())
    kept = {p for p, n in coverage.phonemes.items() if n / total >= MIN_PHONEME_SHARE}
    counts = {d: n for d, n in internal_counts.items()
              if all(unit in kept for unit in d.split("-"))}
    return {"source": f"{word_list.name} ({len(words)} words), espeak-ng {voice}, phonemes "
                      f"with a share of at least {MIN_PHONEME_SHARE}",
            "phonemes": sorted(kept), "diphones": sorted(counts), "diphone_counts": counts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="phoneme/diphone coverage of a prompt set")
    parser.add_argument("--language", default="en")
    parser.add_argument("--prompts", type=Path, help="prompt file (default: the assets one)")
    parser.add_argument("--reference", type=Path, metavar="DICT",
                        help="rebuild the reference inventory from a CMU-style dictionary")
    args = parser.parse_args(argv)
    if args.reference:
        reference = build_reference(args.reference)
        reference_file(args.language).write_text(json.dumps(reference, ensure_ascii=False,
                                                            sort_keys=True), encoding="utf-8")
    report = coverage_report(load_prompts(args.language, args.prompts), args.language)
    json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
