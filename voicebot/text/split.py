"""Where speech is cut: sentences, the first piece of a reply, over-long sentences.

The one rule for both sides. The chat side (``voicebot.lm.speech_shaping``) applies it
to the reply as it streams and hands the voice finished pieces; a voice given a whole
text (``voicebot say``, previews, scoring runs) applies it through ``voicebot.tts.text``.
Either way a text is cut in the same places, once.

- A sentence ends at ``.`` ``!`` ``?`` ``…`` (perhaps repeated, perhaps followed by a
  closing quote or bracket) before whitespace, at a CJK full stop, and at a line break.
  A period after a title or Latin abbreviation ("Dr. Smith", "e.g. this"; the table in
  ``voicebot.text.abbreviations``), after an initial ("J. R. Tolkien", "U.S. law") and
  after a list number at the start of a line ("2. second item") ends nothing.
- The first piece of a reply is what the listener waits for, so it is cut short
  (``first_piece_end``):
  1. at a clause boundary (``,`` ``;`` ``:`` or a dash before a space) as soon as the lead
     has FIRST_CLAUSE_MIN_WORDS words, while the reply still streams: "Well, the capital
     of France," goes to the voice before the model has written "as you know";
  2. a first sentence of up to FIRST_SENTENCE_WHOLE_WORDS words stays whole; a longer one
     is cut at its first clause boundary even when the lead is one word ("Sure,"), else
     before a word that starts a clause ("The fox jumps over the dog | and then ..."),
     else kept whole: a cut mid-phrase is heard as a wrong pause;
  3. a first sentence that runs past FIRST_PIECE_MAX_WORDS words without any of these
     is cut after that many words anyway, so speech can start.
- Any piece longer than LONG_PIECE_CHARS is cut at its last clause boundary (else its
  last space) within that length.

Which first-piece rule won: the voice's. Until this module the chat side cut its first
piece at the first clause of 3 words or more, or after 16 words without punctuation,
and the voice cut what it got again: any first sentence over 6 words at its first comma.
What the benchmarks time is the voice's cut: ``voicebot bench tts`` reports
``first_audio_ms`` for "Sure, I can set a timer for ten minutes.", ``bench turn``
``tts_first_audio_ms`` from the first clause to its first audio, and the Piper test asks
for a first chunk "Sure," under 0.5 s of audio. With the embedded Piper voice (one CPU
thread, noise off, medians of 15 runs on a busy 2-core machine) the first audio of that
sentence came after 38-50 ms cut at "Sure," and 57-97 ms uncut, although Piper already
streams within a sentence: about half the wait. So a long first sentence is cut at its
first comma however short the lead (step 2); the chat side's rules survive where the
voice's had nothing to say: the early cut of step 1, which needs no end of sentence and
so no waiting for one (the voice's rule only ever saw whole sentences), and the 16-word
cap of step 3 (the voice kept an unpunctuated sentence whole, however long). The two
FIRST_PIECE_MAX_WORDS (16 there, 6 here) were different limits under one name: the
voice's 6 is FIRST_SENTENCE_WHOLE_WORDS now, the chat side's 16 FIRST_PIECE_MAX_WORDS.

The positions are counted in raw text (before the voice's normaliser spells "$3.50" as
five words), as the chat side sees it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from voicebot.text.abbreviations import NO_SENTENCE_END

# A clause boundary ends the first piece once its lead has this many words: "Well," alone
# is choppy when more of the clause is already there.
FIRST_CLAUSE_MIN_WORDS = 3
# A first sentence of up to this many words is one piece: cutting it gains little.
FIRST_SENTENCE_WHOLE_WORDS = 6
# A first piece without punctuation is cut after this many words so speech can start.
FIRST_PIECE_MAX_WORDS = 16
# A longer piece is cut at its last clause boundary (or space) within this length.
LONG_PIECE_CHARS = 220

# Words a clause naturally begins with: a fair place to cut a long unpunctuated sentence.
CLAUSE_STARTERS = frozenset({
    "and", "but", "or", "so", "because", "which", "that", "when", "while", "if",
    "although", "though", "where", "who", "since", "until", "unless", "then", "with", "to",
    "for"})

_SENTENCE_END = re.compile(r"\n|[.!?…]+[\"')\]]*(?=\s)|[。！？]+")
_CLAUSE_END = re.compile(r"[,;:—–](?=\s)")
_WORD = re.compile(r"\S+")
_INITIALS = re.compile(r"(?:[^\W\d_]\.)*[^\W\d_]")  # "j", "u.s", "e.g"
_LOOK_BACK = 64  # characters before a period that decide whether it ends a sentence


def _abbreviation_before(text: str, dot: int) -> bool:
    """True when the "." at ``dot`` follows an abbreviation, an initial or a list number."""
    start = max(0, dot - _LOOK_BACK)
    before = text[start:dot]
    newline = before.rfind("\n")
    if newline >= 0 or start == 0:
        line = before[newline + 1:].strip()
        if line.isdigit() and len(line) <= 3:
            return True  # "2. " at the start of a line numbers a list item
    words = before.split()
    if start > 0 and before[:1].strip():
        words = words[1:]  # the look-back began inside a word
    word = words[-1].lstrip("(\"'").lower() if words else ""
    return word in NO_SENTENCE_END or bool(_INITIALS.fullmatch(word))


def sentence_end(text: str, start: int = 0) -> int | None:
    """Where the first sentence of ``text[start:]`` ends (after its punctuation), or None
    when ``text`` holds no end yet."""
    for match in _SENTENCE_END.finditer(text, start):
        if match.group() == "." and _abbreviation_before(text, match.start()):
            continue
        return match.end()
    return None


def sentences(text: str) -> Iterator[str]:
    """The sentences of ``text``, stripped, produced lazily."""
    start = 0
    while (end := sentence_end(text, start)) is not None:
        if sentence := text[start:end].strip():
            yield sentence
        start = end
    if tail := text[start:].strip():
        yield tail


def split_sentences(text: str) -> list[str]:
    return list(sentences(text))


def first_piece_end(text: str, complete: bool = True) -> int | None:
    """Where the first piece of a reply ends in ``text``, the reply's first sentence.

    ``complete``: ``text`` is the whole sentence; otherwise only as much of it as has
    streamed so far. Returns an index just past the piece (after its punctuation), or
    None: the sentence is one piece (complete) or there is no cut yet (streaming). The
    answer for a prefix never contradicts the answer for the whole sentence.
    """
    word_ends = [m.end() for m in _WORD.finditer(text)]
    boundaries = [m.end() for m in _CLAUSE_END.finditer(text)]

    def words_before(index: int) -> int:
        return sum(1 for end in word_ends if end <= index)

    for boundary in boundaries:  # 1. a clause of a few words
        lead = words_before(boundary)
        if lead > FIRST_PIECE_MAX_WORDS:
            break
        if lead >= FIRST_CLAUSE_MIN_WORDS:
            return boundary
    words = len(word_ends)
    if words <= (FIRST_SENTENCE_WHOLE_WORDS if complete else FIRST_PIECE_MAX_WORDS):
        return None  # short enough to stay whole, or too early to tell
    if boundaries and words_before(boundaries[0]) < FIRST_CLAUSE_MIN_WORDS:
        return boundaries[0]  # 2. a short leading phrase: "Sure,"
    starts = [m.start() for m in _WORD.finditer(text)]
    for i in range(FIRST_CLAUSE_MIN_WORDS, min(words - 2, FIRST_SENTENCE_WHOLE_WORDS + 1)):
        if text[starts[i]:word_ends[i]].lower().strip(",") in CLAUSE_STARTERS:
            return word_ends[i - 1]  # 2. before "and", "because", ...
    if words > FIRST_PIECE_MAX_WORDS:
        return word_ends[FIRST_PIECE_MAX_WORDS - 1]  # 3. running on
    return None


def first_clause(sentence: str) -> tuple[str, str]:
    """Split the first piece off a reply's first ``sentence``: (lead, rest); rest may be ""."""
    cut = first_piece_end(sentence)
    if cut is None:
        return sentence, ""
    return sentence[:cut].strip(), sentence[cut:].strip()


def long_cut(text: str, limit: int = LONG_PIECE_CHARS) -> int | None:
    """Where to cut ``text`` if it is longer than ``limit``: after its last clause boundary
    within the limit, else at its last space there; None if it fits or has neither."""
    if len(text) <= limit:
        return None
    head = text[:limit + 1]
    clause = max((m.end() for m in _CLAUSE_END.finditer(head) if m.end() <= limit),
                 default=0)
    if clause > 0:
        return clause
    space = head.rfind(" ")
    return space + 1 if space > 0 else None


def next_cut(text: str, *, first: bool, final: bool = False) -> int | None:
    """Where the next piece of streamed ``text`` ends, or None until more text comes.

    ``first``: no piece of this reply has been handed out yet. ``final``: nothing more
    will come, so the end of ``text`` ends a sentence.
    """
    if not text.strip():
        return None
    end = sentence_end(text)
    if end is None and final:
        end = len(text)
    sentence = text if end is None else text[:end]
    if first and (cut := first_piece_end(sentence, complete=end is not None)):
        return cut
    return long_cut(sentence) or end


def split_sentence(sentence: str, first: bool = False) -> Iterator[str]:
    """One complete sentence as pieces, cut as the chat side cuts it while it streams:
    with ``first`` (it opens a reply) its first piece is cut short; long ones are cut at
    clause boundaries. Lazy, and linear in the length of the sentence."""
    sentence = sentence.strip()
    start = 0
    if first and (cut := first_piece_end(sentence)):
        yield sentence[:cut].strip()
        start = cut
    while start < len(sentence):
        window = sentence[start:start + LONG_PIECE_CHARS + 1]
        cut = long_cut(window) or min(len(window), LONG_PIECE_CHARS)
        if piece := window[:cut].strip():
            yield piece
        start += cut
