"""Vocabulary adaptation without training: an n-gram LM of the user's own text.

The user's text is what they read to the wizard (the dataset's metadata.csv), what they
said and heard in conversation (the saved history), and an optional word or phrase list
(names, places, jargon). ``ngram_build.build_arpa`` turns it into a small ARPA model and
``InterpolatedLM`` mixes it with the general rescoring LM, so n-best hypotheses with the
user's words stop losing to common words that sound alike.

    lm = adapted_lm(load_catalog_ngram(), build_user_lm(gather_user_text(...), path))
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

# Share of the user LM in the mix. The user text is small and topical: a third lets its
# words win among acoustically close hypotheses without overriding the general LM on
# everything else.
DEFAULT_WEIGHT = 0.3
USER_LM_NAME = "user.arpa"


def dataset_texts(dataset: str | Path) -> list[str]:
    """The prompts read in an LJSpeech-layout folder (empty when it has no metadata)."""
    from voicebot.training.dataset import read_metadata

    metadata = Path(dataset) / "metadata.csv"
    return [text for _, text in read_metadata(metadata)] if metadata.is_file() else []


def history_texts(turns: Iterable[dict] | None = None) -> list[str]:
    """What the user said and the bot replied, from the saved conversation history."""
    if turns is None:
        from voicebot.pipeline.history import load_history

        turns = load_history()
    texts = []
    for turn in turns:
        for key in ("user", "reply"):
            value = turn.get(key)
            if isinstance(value, str) and value.strip():
                texts.append(value)
    return texts


def word_list_texts(path: str | Path) -> list[str]:
    """One word or phrase per line; blank lines and # comments skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def gather_user_text(dataset: str | Path | None = None, word_list: str | Path | None = None,
                     history: bool | Iterable[dict] = True) -> list[str]:
    """All of the user's own text. ``history``: True = the saved history, False = none,
    or the turn records themselves."""
    texts: list[str] = []
    if dataset is not None:
        texts += dataset_texts(dataset)
    if history is True:
        texts += history_texts()
    elif history:
        texts += history_texts(history)
    if word_list is not None:
        texts += word_list_texts(word_list)
    return texts


def build_user_lm(texts: Iterable[str], path: str | Path, order: int = 3) -> Path:
    """Write the user's ARPA LM to ``path``; ValueError when the text has no words."""
    from voicebot.lm.ngram_build import write_arpa

    return write_arpa(list(texts), path, order=order)


def adapted_lm(general, user_lm: str | Path, weight: float = DEFAULT_WEIGHT):
    """The general LM interpolated with the user LM file (an ``NGramLM``)."""
    from voicebot.lm.ngram import load_ngram
    from voicebot.lm.ngram_build import InterpolatedLM

    return InterpolatedLM(general, load_ngram(user_lm), weight)
