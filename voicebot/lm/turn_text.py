"""Can the user's words end here? A text signal for the hands-free end of turn.

In hands-free the recogniser streams partial transcripts during the turn, so when the
user pauses the words so far are known for free. ``TextCompleteness`` turns them into
P(the sentence can end here):

- the n-gram LM's ln P(``</s>`` | the last two words) (the catalog
  ``pocketsphinx-en-us-lm`` trigram, the one rescoring uses): "... go to the park" ends a
  sentence often (-1.4 nats), "... go to the" almost never (-5.3);
- a trailing word that cannot end an English sentence (articles, prepositions,
  conjunctions, possessives, auxiliaries: "and", "the", "to", "of", "because", "my") caps
  it near zero, whatever the LM says;
- Whisper's own trailing comma, dash or ellipsis says the voice went on; they halve it;
- a word cut off mid-way ("I want to go to the f-": Whisper writes the fragment with a
  dash) caps it near zero like a word that cannot end a sentence.

It is a logistic of the end-of-sentence log-probability (``MIDPOINT``, ``SLOPE``: set by
reading, not fitted to the bench) and costs a few dictionary look-ups (microseconds). The
decision that combines it with Smart Turn and the silence is ``voicebot.audio.turn_end``;
``voicebot bench endpoint`` measures them together.
"""

from __future__ import annotations

import functools
import math
import re

from voicebot.lm.ngram import BOS, EOS, NGramLM, load_catalog_ngram
from voicebot.text.scoring import words_for_scoring

MIDPOINT = -2.5  # ln P(</s> | last words) at which the text says 50:50
SLOPE = 2.0  # per nat
NEVER_FINAL_P = 0.02  # P(finished) after a word that cannot end a sentence
TRAILING_CONTINUES = re.compile(r"(,|-|\u2014|\u2013|\.\.\.|\u2026)\s*$")
CUT_WORD = re.compile(r"\w[-\u2014\u2013]\s*$")  # "f-": the speaker stopped mid-word

# Words after which a sentence spoken to a chatbot hardly ever ends: articles, conjunctions,
# possessives, contractions, "to", "of". Prepositions that end questions ("where are you
# from", "what is it about"), auxiliaries, "that", "so" ("yes I do", "I think so") can end
# one: the LM judges those.
_NEVER_FINAL_WORDS = """
a an the and or but nor because although unless if whether than
to of into onto my your his her its our their
i'm we're you're they're he's she's it's i've we've you've they've
i'd we'd you'd they'd i'll we'll you'll they'll
um uh er erm
"""
NEVER_FINAL = frozenset(_NEVER_FINAL_WORDS.split())


class TextCompleteness:
    """P(finished) of a partial transcript; None when there are no words yet."""

    def __init__(self, lm: NGramLM) -> None:
        self.lm = lm

    def eos_logprob(self, words: list[str]) -> float:
        history = [BOS, *words][-(self.lm.order - 1):] if self.lm.order > 1 else []
        return self.lm.word_logprob(EOS, history)

    def probability(self, text: str) -> float | None:
        words = words_for_scoring(text)
        if not words:
            return None
        p = 1.0 / (1.0 + math.exp(-SLOPE * (self.eos_logprob(words) - MIDPOINT)))
        if words[-1] in NEVER_FINAL or CUT_WORD.search(text):
            p = min(p, NEVER_FINAL_P)
        if TRAILING_CONTINUES.search(text):
            p *= 0.5
        return p


@functools.cache
def load_text_completeness(model_id: str = "pocketsphinx-en-us-lm") -> TextCompleteness:
    """The text signal over the catalog n-gram ``model_id`` (loaded once, ~0.2 s)."""

    return TextCompleteness(load_catalog_ngram(model_id))
