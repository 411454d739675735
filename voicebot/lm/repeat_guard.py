"""Never say the same reply, or the same stock sentence, twice (GUI-free).

A small model that has said "I'm glad you're enjoying your visit to Paris!" once finds it
in its context and says it again, then again: ``voicebot bench dialogue`` counted 23 of
80 replies that were verbatim repeats before this guard. ``RepeatFilter`` sits between
the decoder and the listener:

- text is handed out as it comes, except while it could still turn into a repeat: the
  whole reply so far is the start of an earlier reply, or the sentence being written is
  the start of an earlier sentence of ``MIN_SENTENCE_WORDS`` or more words. A normal
  reply leaves that state within a few tokens ("The capital of" ... "Italy"), well before
  the first clause is complete, so the voice starts when it did;
- a first sentence that ends up as a repeat (or a whole reply that does) is never handed
  out: the verdict is ``REGENERATE`` and the chat model tries again, sampling with another
  seed and the rejected first tokens banned, a bounded number of times;
- a later sentence that ends up as a repeat ends the reply before it (``STOP``);
- a reply that opens in French or Spanish ("Bonjour, my name is ...", "Bien sûr, my
  friend!", seen after "I live in Paris" and "My name is Ken and I live in Tokyo") is
  generated again like a repeat. Banning the opening word's later tokens instead gave
  "Bon, it's France!".

Words are compared case-folded without punctuation, so "Hey, Sam!" and "hey sam" are the
same reply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MIN_SENTENCE_WORDS = 5
KEEP, REGENERATE, STOP = "keep", "regenerate", "stop"

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*(?=\s|$)")

# Opening words of a reply that has switched language (normalized).
FOREIGN_OPENINGS = ("bonjour", "bien", "hola", "oui", "merci", "salut", "ciao", "gracias",
                    "voilà", "hallo", "guten", "aujourd", "buenos", "buenas", "bonsoir", "el",
                    "je", "bonne", "très")

# Said instead when every try was a repeat; the first one not said before is used.
VARIED_FALLBACKS = (
    "I think I've said all I can about that. What else would you like to talk about?",
    "Let's try something else. What's on your mind?",
    "I'm not sure what to add. Could you ask me another way?",
    "Tell me more, and I'll do my best to help.",
)


def normalized(text: str) -> str:
    return " ".join(_WORD.findall(text.casefold()))


def sentences(text: str) -> list[str]:
    """The sentences of ``text``, each with its end mark."""
    out, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        out.append(text[start:match.end()].strip())
        start = match.end()
    rest = text[start:].strip()
    return [s for s in [*out, rest] if s]


class RepeatMemory:
    """What was said before: whole replies and their longer sentences, normalized."""

    def __init__(self, replies: Iterable[str] = ()):
        self.replies: set[str] = set()
        self.sentences: set[str] = set()
        for reply in replies:
            self.add(reply)

    def add(self, reply: str) -> None:
        key = normalized(reply)
        if not key:
            return
        self.replies.add(key)
        for sentence in sentences(reply):
            words = normalized(sentence)
            if len(words.split()) >= MIN_SENTENCE_WORDS:
                self.sentences.add(words)

    def __bool__(self) -> bool:
        return bool(self.replies)

    def fallback(self) -> str:
        for line in VARIED_FALLBACKS:
            if normalized(line) not in self.replies:
                return line
        return VARIED_FALLBACKS[0]


def _starts_any(prefix: str, known: set[str]) -> bool:
    """Whether the normalized ``prefix`` (its last word maybe unfinished) starts one of
    ``known``."""
    if not prefix:
        return bool(known)
    return any(item.startswith(prefix) for item in known)


def _first_word(text: str) -> tuple[str, bool]:
    """The reply's first word (case-folded) and whether it is complete (something that
    is not part of a word follows it)."""
    folded = text.casefold()
    match = _WORD.search(folded)
    if not match:
        return "", False
    return match.group(), match.end() < len(folded)


def _foreign_opening(text: str) -> bool:
    word, done = _first_word(text)
    return done and word in FOREIGN_OPENINGS


def _may_open_foreign(text: str) -> bool:
    word, done = _first_word(text)
    return bool(word) and not done and any(o.startswith(word) for o in FOREIGN_OPENINGS)


class RepeatFilter:
    """Between the decoder's text pieces and the listener (see the module docstring).

    ``push(piece)`` returns (text to hand out now, verdict); ``finish()`` the same at the
    end of the reply. After a verdict other than KEEP the reply is over.
    """

    def __init__(self, memory: RepeatMemory):
        self.memory = memory
        self.text = ""  # everything the decoder produced
        self.released = 0  # how much of it was handed out
        self.sentence_start = 0  # where the sentence being written starts

    def push(self, piece: str) -> tuple[str, str]:
        self.text += piece
        if self.released == 0 and _foreign_opening(self.text):
            return "", REGENERATE
        # Complete sentences first: each is judged once, when its end mark arrives.
        while True:
            match = _SENTENCE_END.search(self.text, self.sentence_start)
            if not match:
                break
            verdict = self._judge_sentence(self.text[self.sentence_start:match.end()])
            if verdict != KEEP:
                return self._end(verdict)
            self.sentence_start = match.end()
        if self._holding():
            return "", KEEP
        return self._release(len(self.text)), KEEP

    def finish(self) -> tuple[str, str]:
        """The end of the reply: a whole reply said before, or a last sentence said
        before, is not handed out."""
        if self.released == 0 and _foreign_opening(self.text + " "):
            return "", REGENERATE
        if not self.memory:
            return self._release(len(self.text)), KEEP
        if normalized(self.text) in self.memory.replies:
            return "", REGENERATE
        tail = self.text[self.sentence_start:]
        if tail.strip():
            verdict = self._judge_sentence(tail)
            if verdict != KEEP:
                return self._end(verdict)
        return self._release(len(self.text)), KEEP

    def _end(self, verdict: str) -> tuple[str, str]:
        """A repeated sentence: regenerate, or end the reply after the sentences before
        it (unless those, alone, are a reply said before)."""
        if verdict == STOP:
            if normalized(self.text[:self.sentence_start]) in self.memory.replies \
                    and self.released == 0:
                return "", REGENERATE
            return self._release(self.sentence_start), STOP
        return "", verdict

    def _judge_sentence(self, sentence: str) -> str:
        if normalized(sentence) not in self.memory.sentences:
            return KEEP
        first = self.released == 0 and not self.text[:self.sentence_start].strip()
        return REGENERATE if first else STOP

    def _holding(self) -> bool:
        if self.released == 0 and _may_open_foreign(self.text):
            return True
        if not self.memory:
            return False
        if self.released == 0 and _starts_any(normalized(self.text), self.memory.replies):
            return True
        current = normalized(self.text[self.sentence_start:])
        return bool(current) and _starts_any(current, self.memory.sentences)

    def _release(self, end: int) -> str:
        out = self.text[self.released:end]
        self.released = end
        return out
