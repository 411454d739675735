"""What the user says about themselves, kept in a small memory for the prompt (GUI-free).

A 135M chat model does not find "My name is Tom." eight turns back when asked "What is
my name?" (measured with ``voicebot bench dialogue``: 1 of 11 such questions answered
before this memory), and a history trimmed for small models drops that turn anyway. So
the few facts people state about themselves are picked out of the user's messages with
patterns ("my name is…", "call me…", "I'm Maria", "I live in…", "I'm from…", "I'm a…",
"I work as…", "I like/love/enjoy…") and rendered as one line under the system prompt.
Questions ("Do I live in Paris?") state nothing; a later statement replaces an earlier
one; at most ``MAX_LIKES`` likes are kept, the newest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_LIKES = 3
_WORD = r"[A-Za-z][A-Za-z'-]*"
# Words that follow "I'm" without being a name: "I'm Fine", "I'm Sorry", "I'm From ...".
_NOT_NAMES = {
    "a", "an", "the", "from", "in", "at", "not", "so", "just", "very", "really", "fine",
    "good", "ok", "okay", "sorry", "here", "back", "glad", "happy", "sad", "tired", "sure",
    "done", "ready", "going", "doing", "also", "still", "new", "hungry", "busy", "well",
    "great", "bored", "home", "afraid", "interested", "looking", "trying", "thinking",
    "working", "living", "married", "single", "learning", "voicebot",
}
_STOP_AFTER = {"and", "but", "so", "because", "with", "for", "since", "now", "who", "which",
               "that", "where", "when", "at", "in", "of", "to", "from", "too", "very",
               "by", "the", "way", "though", "also"}
_NOT_PLACES = {"a", "an", "the", "here", "there", "home", "it", "this", "that", "my", "our",
               "his", "her", "their", "with", "alone", "abroad", *_STOP_AFTER}
_NOT_LIKES = {"it", "that", "this", "you", "them", "him", "her", "those", "these", "to"}

_NAME = [re.compile(p, re.IGNORECASE) for p in (
    rf"\bmy name(?: is|'s)\s+({_WORD})", rf"\bcall me\s+({_WORD})",
    rf"\bi am called\s+({_WORD})", rf"\bi'm called\s+({_WORD})")]
_NAME_IM = re.compile(r"\bI(?:'m| am)\s+([A-Z][a-z'-]+)\b(?!\s+(?:from|in|at)\b)")
_CITY = re.compile(
    r"(?i:\bi(?:'m| am)?\s*(?:live|living|based|from|come from|moved to|grew up)(?: in| to)?)"
    rf"\s+({_WORD}(?:\s+[A-Z][A-Za-z'-]*)*(?:,\s*[A-Z][A-Za-z'-]*(?:\s+[A-Z][A-Za-z'-]*)*)?)")
_JOB = [re.compile(p, re.IGNORECASE) for p in (
    r"\bi(?:'m| am)\s+an?\s+([a-z][a-z-]*(?:\s+[a-z][a-z-]*){0,2})",
    r"\bi work as\s+an?\s+([a-z][a-z-]*(?:\s+[a-z][a-z-]*){0,2})",
    r"\bmy job is\s+(?:an?\s+)?([a-z][a-z-]*(?:\s+[a-z][a-z-]*){0,2})")]
_LIKE = re.compile(r"\bi (?:really |also |just )?(?:like|love|enjoy)\s+([a-z][a-z' -]*)",
                   re.IGNORECASE)
_SENTENCES = re.compile(r"[^.!?\n]+[.!?]*")


@dataclass(frozen=True)
class UserFacts:
    name: str | None = None
    city: str | None = None
    job: str | None = None
    likes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.name or self.city or self.job or self.likes)

    def sentence(self) -> str:
        """The memory as the prompt line: "The user's name is Tom. The user lives in ..."."""
        parts = []
        if self.name:
            parts.append(f"The user's name is {self.name}.")
        if self.city:
            parts.append(f"The user lives in {self.city}.")
        if self.job:
            parts.append(f"The user works as {_article(self.job)} {self.job}.")
        if self.likes:
            parts.append(f"The user likes {_join(self.likes)}.")
        return " ".join(parts)


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def _join(items: tuple[str, ...]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _cut(phrase: str, max_words: int = 4) -> str:
    """The phrase up to the first word that starts a new clause."""
    kept = []
    for word in phrase.split():
        if word.lower() in _STOP_AFTER and kept:
            break
        kept.append(word)
        if len(kept) == max_words:
            break
    return " ".join(kept).strip(" ,'-")


def _name(sentence: str) -> str | None:
    for pattern in _NAME:
        match = pattern.search(sentence)
        if match and match.group(1).lower() not in _NOT_NAMES:
            return match.group(1).capitalize()
    match = _NAME_IM.search(sentence)
    if match and match.group(1).lower() not in _NOT_NAMES:
        return match.group(1)
    return None


def _city(sentence: str) -> str | None:
    match = _CITY.search(sentence)
    if not match:
        return None
    city = match.group(1)
    if city[:1].islower():  # typed in lower case: the words up to a clause word or mark
        city = re.split(r"[,.;:!?]", sentence[match.start(1):])[0]
    city = _cut(city, 4).strip(", ")
    if not city or city.split()[0].lower() in _NOT_PLACES:
        return None
    return " ".join(w if w[:1].isupper() else w.capitalize() for w in city.split())


def _job(sentence: str) -> str | None:
    for pattern in _JOB:
        match = pattern.search(sentence)
        if match:
            job = _cut(match.group(1), 3)
            if job and not job.lower().startswith(("big fan", "fan", "bit", "little", "lot")):
                return job.lower()
    return None


def _like(sentence: str) -> str | None:
    match = _LIKE.search(sentence)
    if not match:
        return None
    like = _cut(match.group(1), 4)
    if not like or like.split()[0].lower() in _NOT_LIKES:
        return None
    return like


def facts_in(text: str, facts: UserFacts = UserFacts()) -> UserFacts:
    """``facts`` updated with what ``text`` (one user message) states."""
    name, city, job, likes = facts.name, facts.city, facts.job, list(facts.likes)
    for sentence in _SENTENCES.findall(text):
        if sentence.rstrip().endswith("?"):
            continue  # a question states nothing
        name = _name(sentence) or name
        city = _city(sentence) or city
        job = _job(sentence) or job
        like = _like(sentence)
        if like and like.lower() not in (x.lower() for x in likes):
            likes = [*likes, like][-MAX_LIKES:]
    return UserFacts(name, city, job, tuple(likes))


def extract_facts(user_messages: Iterable[str]) -> UserFacts:
    """The facts in the user's messages, oldest first (later ones win)."""
    facts = UserFacts()
    for text in user_messages:
        if len(text) <= 500:  # a pasted text is not the user talking about themselves
            facts = facts_in(text, facts)
    return facts


def states_a_fact(text: str) -> bool:
    return bool(facts_in(text)) if len(text) <= 500 else False


_ASKS = (
    ("name", re.compile(r"\b(?:what(?:'s| is) my name|my name again|remember my name|"
                        r"know my name|who am i)\b", re.IGNORECASE)),
    ("city", re.compile(r"\b(?:where (?:do|did) i (?:live|come from)|where am i from|"
                        r"(?:which|what) (?:city|town|country) (?:do|am) i|where i live)\b",
                        re.IGNORECASE)),
    ("job", re.compile(r"\b(?:what do i do(?: for a living)?|what(?:'s| is) my "
                       r"(?:job|work|profession|occupation)|where do i work)\b", re.IGNORECASE)),
    ("likes", re.compile(r"\b(?:what do i (?:like|love|enjoy)|what(?:'s| are) my hobb(?:y|ies)|"
                         r"what am i into)\b", re.IGNORECASE)),
)


def answer_start(question: str, facts: UserFacts) -> str | None:
    """The first sentence of the reply to a question about a fact the memory holds
    ("What's my name again?" -> "Your name is Tom."), or None.

    Measured on SmolLM2-135M with the facts under the system prompt, or restated in the
    conversation: "What is my name?" got "I'm Emily." and "Where do I live?" "The ocean
    is a beautiful place."; even a reply started with "Your name is" went on "Emily". A
    model this small cannot tell "my" from "your", so the memory answers these questions
    itself and the model carries on after it.
    """
    for kind, pattern in _ASKS:
        if not pattern.search(question):
            continue
        if kind == "name" and facts.name:
            return f"Your name is {facts.name}."
        if kind == "city" and facts.city:
            return f"You live in {facts.city}."
        if kind == "job" and facts.job:
            return f"You work as {_article(facts.job)} {facts.job}."
        if kind == "likes" and facts.likes:
            return f"You like {_join(facts.likes)}."
    return None
