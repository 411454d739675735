"""Is what the user said over the bot's reply only a backchannel ("mm-hmm", "yeah", "I see")?

Hands-free mode pauses the reply as soon as the user makes a sound over it, and only
then, once the recogniser has the words, decides what the sound was
(``voicebot.pipeline.conversation``): a listener's signal that they are following, or
nothing at all (a cough, the bot's own echo that got through), lets the reply go on; any
real words interrupt it and start a new turn.

The rule is deliberately narrow, because a wrong "backchannel" ignores the user while a
wrong "interruption" only costs the rest of a reply they can ask for again: the
transcript, normalised as for scoring (``voicebot.text.scoring``: lower case, no
punctuation, "mm-hmm" -> "mm hmm"), must be made entirely of the units below, at most
``MAX_UNITS`` of them ("yeah yeah", "oh I see", "mm-hmm okay"). "No", "wait", "stop" and
anything with a content word are interruptions. Whisper's spellings of the murmurs
("Mm-hmm", "Mhm", "Uh-huh", "Hmm") are listed, and a word made only of a murmur's
letters ("MMM.", which is what Whisper tiny.en hears of Piper saying "Mm-hmm.") is one.

"No words" also covers what Whisper writes for sound that is not speech: on the bot's
own echo left over after cancellation (``voicebot bench echo``, 20 replies) it wrote
"You" four times, "you" and "Thank you." (``NOT_SPEECH``). Those few whole transcripts
count as nothing heard, so a burst of echo that paused the reply lets it go on.
"""

from __future__ import annotations

import re

from voicebot.text.scoring import words_for_scoring

# One-word backchannels, as the scoring normalisation writes them.
WORDS = frozenset({
    "mm", "mmm", "mhm", "mmhmm", "hm", "hmm", "hmmm", "uhhuh", "uh", "um", "ah", "aha",
    "oh", "ooh", "yeah", "yep", "yup", "yes", "ya", "okay", "ok", "kay", "alright", "right",
    "sure", "cool", "nice", "wow", "really", "indeed", "exactly", "true", "gotcha", "great",
    "interesting", "absolutely", "definitely", "totally", "fine",
})
# Several-word ones, each counted as one unit.
PHRASES = frozenset({
    ("mm", "hmm"), ("m", "hm"), ("m", "hmm"), ("mm", "hm"), ("uh", "huh"), ("uh", "hum"),
    ("i", "see"), ("got", "it"), ("go", "on"), ("all", "right"), ("of", "course"),
    ("that's", "right"), ("makes", "sense"), ("that", "makes", "sense"), ("i", "know"),
    ("oh", "really"), ("i", "get", "it"), ("sounds", "good"), ("oh", "okay"),
})
# Whisper spells a murmur with as many letters as it heard ("MMM.", "Mmmm", "Uhh",
# "Emm-"):
# any word of only these letters in this shape is one.
MURMUR = re.compile(r"[eu]?m+|h+m+|m+h+m+|u+h+|a+h+|o+h+")
MAX_UNITS = 3
# Whole transcripts Whisper makes of noise and echo (see the module docstring).
NOT_SPEECH = frozenset({"you", "thank you", "thanks for watching"})
_LONGEST = max(len(p) for p in PHRASES)


def backchannel_units(text: str) -> list[str] | None:
    """The transcript cut into backchannel units, or None if any word is not one."""
    words = words_for_scoring(text)
    units: list[str] = []
    i = 0
    while i < len(words):
        for size in range(min(_LONGEST, len(words) - i), 1, -1):  # longest phrase first
            if tuple(words[i:i + size]) in PHRASES:
                units.append(" ".join(words[i:i + size]))
                i += size
                break
        else:
            if words[i] not in WORDS and not MURMUR.fullmatch(words[i]):
                return None
            units.append(words[i])
            i += 1
    return units


def has_words(text: str) -> bool:
    """Anything left after normalisation (Whisper's "[BLANK_AUDIO]", "(coughs)": no) that
    is not one of Whisper's transcripts of noise ("You")."""
    words = " ".join(words_for_scoring(text))
    return bool(words) and words not in NOT_SPEECH


def is_backchannel(text: str) -> bool:
    """A short listener's signal only: no words at all does not count (see ``has_words``)."""
    units = backchannel_units(text)
    return bool(units) and len(units) <= MAX_UNITS


def lets_reply_go_on(text: str) -> bool:
    """What the user said over a paused reply lets it resume: nothing, or a backchannel."""
    return not has_words(text) or is_backchannel(text)
