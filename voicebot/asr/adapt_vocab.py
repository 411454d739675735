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

from voicebot.asr.factory import ngram_from_settings
from voicebot.lm.ngram import load_ngram
from voicebot.lm.ngram_build import InterpolatedLM, write_arpa
from voicebot.paths import user_dirs

log = logging.getLogger(__name__)

# Share of the user LM in the mix. The user text is small and topical: a third lets its
# words win among acoustically close hypotheses without overriding the general LM on
# everything else.
DEFAULT_WEIGHT = 0.3
USER_LM_NAME = "user.arpa"


def history_texts(turns: Iterable[dict]) -> list[str]:
    """What the user said and the bot replied, from conversation turn records."""
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


def gather_user_text(prompts: Iterable[str] = (), word_list: str | Path | None = None,
                     history: Iterable[dict] = ()) -> list[str]:
    """All of the user's own text: the prompts they read (``training.dataset.prompt_texts``),
    the conversation turns (``pipeline.history.load_history``) and a word list file.

    The callers gather prompts and turns: reading a dataset or the saved history belongs to
    the layers above recognition.
    """
    texts = list(prompts) + history_texts(history)
    if word_list is not None:
        texts += word_list_texts(word_list)
    return texts


def build_user_lm(texts: Iterable[str], path: str | Path, order: int = 3) -> Path:
    """Write the user's ARPA LM to ``path``; ValueError when the text has no words."""

    return write_arpa(list(texts), path, order=order)


def adapted_lm(general, user_lm: str | Path, weight: float = DEFAULT_WEIGHT):
    """The general LM interpolated with the user LM file (an ``NGramLM``)."""

    return InterpolatedLM(general, load_ngram(user_lm), weight)


def default_user_lm_path() -> Path:
    return user_dirs().data / "asr" / USER_LM_NAME


def refresh_user_lm(history: Iterable[dict], prompts: Iterable[str] = (),
                    word_list: str | Path | None = None,
                    path: str | Path | None = None) -> Path | None:
    """Rebuild the user LM from everything the user has written or read so far.

    What the app calls after a recording session or a conversation; returns the ARPA
    path, or None when there is no user text yet (nothing to adapt to).
    """
    texts = gather_user_text(prompts, word_list=word_list, history=history)
    if not any(t.strip() for t in texts):
        return None
    try:
        return build_user_lm(texts, path or default_user_lm_path())
    except ValueError:  # text without a single scorable word
        return None


def ngram_with_user_lm(asr_settings, user_lm: str | Path | None = None,
                       weight: float = DEFAULT_WEIGHT):
    """The settings' rescoring LM, interpolated with the user LM when one exists."""

    general = ngram_from_settings(asr_settings)
    user_lm = Path(user_lm) if user_lm else default_user_lm_path()
    if general is None or not user_lm.is_file():
        return general
    return adapted_lm(general, user_lm, weight)
