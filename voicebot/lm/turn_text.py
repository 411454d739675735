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
reading, not fitted to the bench) and costs a few dictionary look-ups (microseconds).

With ``sentence_ends`` (the chat model's n-best scorer, ``OnnxHypothesisScorer``) the
log-probability is the chat model's instead: P(".", "?" or "!" next | the words so far),
which knows what a question to a chatbot needs ("What is the capital" -10.2, "... of
France" -0.1; "My name is" -12.4, "... John" -1.0), at ~85-120 ms a partial on the
2-core machine (the n-gram's trigram window sees "the capital" either way). Its logistic
(``CHAT_MIDPOINT``, ``CHAT_SLOPE``) was read off ``bench endpoint``'s seed 17: see
``voicebot.audio.turn_end``. A scorer that fails falls back to the n-gram. The
decision that combines it with Smart Turn and the silence is ``voicebot.audio.turn_end``;
``voicebot bench endpoint`` measures them together.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from typing import Any

from voicebot.lm.ngram import BOS, EOS, NGramLM, load_catalog_ngram
from voicebot.text.scoring import words_for_scoring

log = logging.getLogger(__name__)

MIDPOINT = -2.5  # ln P(</s> | last words) at which the text says 50:50
SLOPE = 2.0  # per nat
CHAT_MIDPOINT = -2.0  # the same for the chat model's ln P(end mark next | words)
CHAT_SLOPE = 1.5
# Shorter turns are the n-gram's: the chat model expects a user's "Yes", "Stop" or "Thank
# you" to go on (bench endpoint, seed 17: 21 of 28 short turns waited over a second with
# it, 7 with this rule, 3 with the n-gram alone).
CHAT_MIN_WORDS = 3
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

    def __init__(self, lm: NGramLM, sentence_ends: Any = None) -> None:
        self.lm = lm
        self.sentence_ends = sentence_ends  # the chat model's scorer, or None

    def eos_logprob(self, words: list[str]) -> float:
        history = [BOS, *words][-(self.lm.order - 1):] if self.lm.order > 1 else []
        return self.lm.word_logprob(EOS, history)

    def probability(self, text: str, context: Any = None) -> float | None:
        """``context``: the conversation so far (the chat model reads it; pass the one the
        n-best rescoring uses, so the scorer keeps it computed)."""
        words = words_for_scoring(text)
        if not words:
            return None
        chat = self._chat_logprob(words, context)
        if chat is not None:
            p = 1.0 / (1.0 + math.exp(-CHAT_SLOPE * (chat - CHAT_MIDPOINT)))
        else:
            p = 1.0 / (1.0 + math.exp(-SLOPE * (self.eos_logprob(words) - MIDPOINT)))
        if words[-1] in NEVER_FINAL or CUT_WORD.search(text):
            p = min(p, NEVER_FINAL_P)
        if TRAILING_CONTINUES.search(text):
            p *= 0.5
        return p

    def _chat_logprob(self, words: list[str], context: Any) -> float | None:
        if self.sentence_ends is None or len(words) < CHAT_MIN_WORDS:
            return None
        text = " ".join(words)
        try:  # as a user types it: the chat model knows "What", not "what"
            return float(self.sentence_ends.sentence_end_logprob(text[0].upper() + text[1:],
                                                                 context))
        except Exception:  # the words alone still count: the n-gram's
            log.exception("end of turn: the chat model could not score %r; the n-gram "
                          "does from now on", text)
            self.sentence_ends = None
            return None


@functools.cache
def load_text_completeness(model_id: str = "pocketsphinx-en-us-lm") -> TextCompleteness:
    """The text signal over the catalog n-gram ``model_id`` (loaded once, ~0.2 s)."""

    return TextCompleteness(load_catalog_ngram(model_id))
