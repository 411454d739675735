"""The teacher corpus: generated English sentences spoken by the embedded Piper voice.

A Tacotron2 base needs far more speech than a user records, and no English speech
corpus installs offline, but the Piper voice can say anything quickly (~13x real time
on this 2-core CPU). ``sentences`` generates the text from a small grammar written
here (templates x word lists: statements, questions, exclamations, numbers, dates,
times, prices, short and long sentences), deterministic by seed, and leaves out every
sentence of the user prompt set so that scores on held-out prompts stay honest.
``synthesize`` speaks them with the Piper voice and stores V1 mels
(``voicebot.tts.mel_v1``) and token ids in shards on disk; an interrupted synthesis
continues where it stopped.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voicebot.atomic_write import atomic_path
from voicebot.models import resolve
from voicebot.text.spoken import normalize
from voicebot.tts.mel_v1 import HOP_LENGTH, SAMPLE_RATE, mel_v1

log = logging.getLogger(__name__)

CORPUS_VERSION = "2"  # bump when the grammar or the stored format changes
# Piper ends each sentence with 80-220 ms of silence (7-19 frames, measured), up to 16%
# of a short sentence: kept, it bends the alignment away from the diagonal and teaches
# the stop token late. Trimmed to this many frames past the last loud one (~46 ms).
KEEP_SILENCE_FRAMES = 4
QUIET_NATS = 6.0  # a frame is silent when its loudest band is 6 nats (52 dB) below the peak
SHARD_SIZE = 50  # sentences per shard file: at most this much work is redone on resume
PIPER_VOICE = "piper-en-us-joe-medium"

# ----- the grammar ---------------------------------------------------------------------
# Word lists chosen for variety of sounds: every English vowel, the affricates, /ʒ/
# ("measure", "beige"), /θ/ and /ð/, syllabic consonants, clusters ("strengths").
_PEOPLE = ["my sister", "the old farmer", "our neighbour", "the young pilot",
           "a quiet student", "the baker", "her cousin", "the museum guide",
           "a tired engineer", "the choir teacher", "his grandfather", "the new nurse",
           "a cheerful waiter", "the mayor", "my best friend", "the shy musician",
           "a clever lawyer", "the fisherman", "our youngest daughter", "the gardener",
           "a famous author", "the night watchman", "the village doctor", "an actress"]
_NAMES = ["Oliver", "Maya", "Joseph", "Zoe", "Theodore", "Hannah", "Victor", "Ruth",
          "George", "Isabel", "Quentin", "Judith", "Arthur", "Yvonne", "Leonard",
          "Beatrice", "Hugo", "Sheila", "Edward", "Vanessa", "Patrick", "Gwen", "Shaun",
          "Agnes"]
_THINGS = ["the leather jacket", "a wooden chair", "the silver key", "a jar of honey",
           "the broken umbrella", "a bag of oranges", "the yellow envelope",
           "a pair of boots", "the kitchen scale", "a box of matches", "the garden hose",
           "a heavy suitcase", "the beige curtains", "a bowl of soup", "the measuring tape",
           "a map of the coast", "the church bells", "a loaf of rye bread",
           "the violin case", "a bunch of grapes", "the thick blanket", "a puzzle book",
           "the cracked mirror", "a jug of water", "the television", "a sketch of the bridge"]
_PLACES = ["the harbour", "the station", "the library", "the north garden",
           "the market square", "the mountain hut", "the school yard", "the village hall",
           "the riverbank", "the airport", "the bakery on the corner", "the old theatre",
           "the hospital", "the beach", "the zoo", "the museum", "the forest path",
           "the garage", "the treasury", "the youth club", "the bus depot", "the pier"]
_VERBS_PAST = ["carried", "fixed", "painted", "dropped", "borrowed", "measured", "washed",
               "hid", "sold", "found", "ordered", "wrapped", "pushed", "judged", "weighed",
               "delivered", "polished", "stretched", "repaired", "thanked", "chose",
               "breathed on", "smoothed", "rescued", "examined", "shared"]
_VERBS_BASE = ["carry", "fix", "paint", "borrow", "measure", "wash", "hide", "sell",
               "find", "order", "wrap", "push", "weigh", "deliver", "polish", "repair",
               "choose", "rescue", "examine", "share", "bring", "throw", "catch", "draw"]
_ADJECTIVES = ["enormous", "tiny", "bright", "muddy", "shiny", "gloomy", "peculiar",
               "gorgeous", "awkward", "smooth", "rough", "quiet", "noisy", "ancient",
               "fragile", "thorough", "joyful", "usual", "vivid", "chilly", "huge",
               "awful", "fresh", "genuine", "pleasant", "strange", "boring", "curious"]
_ADVERBS = ["slowly", "carefully", "quickly", "quietly", "eagerly", "gently",
            "reluctantly", "proudly", "anxiously", "thoroughly", "suddenly", "happily",
            "loudly", "patiently", "boldly", "easily"]
_TIMES = ["this morning", "last Thursday", "yesterday evening", "at noon",
          "before breakfast", "after the storm", "during the winter", "on Sunday",
          "at midnight", "the next day", "in the autumn", "later that week",
          "early in June", "in the spring", "around lunchtime", "at dusk"]
_FEELINGS = ["surprised", "delighted", "worried", "embarrassed", "exhausted", "thrilled",
             "confused", "jealous", "grateful", "nervous", "amused", "annoyed"]
_ANIMALS = ["a hedgehog", "the goat", "a pair of owls", "the ginger cat", "a huge moth",
            "the puppy", "a swan", "the oxen", "a squirrel", "the zebra", "a thrush",
            "the jellyfish"]
# Plain nouns for list sentences: many more sound sequences than the phrases above
# (diphone coverage of 3000 sentences 0.894 -> see the module test / report).
_NOUNS = ["button", "mountain", "cotton", "kitten", "idea", "loch", "pyjamas", "garage",
          "treasure", "vision", "rhythm", "strengths", "sixths", "twelfth", "crisps",
          "orchestra", "choir", "quay", "yacht", "thistle", "whistle", "wreath",
          "thermometer", "envelope", "furniture", "squirrel", "hieroglyph", "bureau",
          "tortoise", "oyster", "boomerang", "pharmacy", "vaccine", "sculpture",
          "jewellery", "pencil", "guitar", "saxophone", "hexagon", "igloo", "umbrella",
          "avocado", "biscuit", "cauliflower", "dolphin", "eucalyptus", "fjord",
          "giraffe", "hammock", "iceberg", "javelin", "kangaroo", "lantern", "mushroom",
          "nephew", "ointment", "penguin", "quilt", "raccoon", "scissors", "toothbrush",
          "urchin", "volcano", "walrus", "xylophone", "yoghurt", "zipper", "anchor",
          "badge", "cushion", "dungeon", "engine", "feather", "goulash", "harpoon",
          "island", "jigsaw", "kayak", "lollipop", "magnet", "noodle", "orange",
          "pudding", "radish", "saddle", "tunnel", "usher", "voyage", "wardrobe",
          "beige paint", "mirage", "leisure", "casual shoes", "azure tiles", "genre",
          "ukulele", "bouquet", "kettle", "shovel", "cello", "tuba", "abyss", "nozzle",
          "puddle", "chimney", "thimble", "wolf", "earth", "fourth", "month", "clothes",
          "mouthwash", "sandwich", "length", "warmth", "breadth", "youth", "truth",
          "chef", "sheriff", "joy", "coin", "toy", "cowboy", "towel", "hour", "tyre",
          "fire", "lawyer", "curfew", "nuisance", "onion", "cucumber", "fuel", "view"]
_NUMBERS_SMALL = [*range(2, 13), 15, 20, 24, 30, 40, 50, 99]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_OPENERS = ["Well,", "Honestly,", "Of course,", "By the way,", "In fact,", "Oh,",
            "Luckily,", "Meanwhile,", "Sadly,", "Anyway,", "Yes,", "No,"]
_EXCLAIM = ["What a lovely surprise", "That is absolutely wonderful", "Look out",
            "How strange", "Watch your step", "Never again", "What a mess",
            "Thank goodness", "Oh no", "Hurry up", "That was close", "Well done"]


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _statement(rng: random.Random) -> str:
    who, thing = rng.choice(_PEOPLE + _NAMES), rng.choice(_THINGS)
    return _cap(f"{who} {rng.choice(_VERBS_PAST)} {thing} {rng.choice(_TIMES)}.")


def _place(rng: random.Random) -> str:
    return _cap(f"{rng.choice(_PEOPLE)} {rng.choice(_ADVERBS)} "
                f"{rng.choice(_VERBS_PAST)} {rng.choice(_THINGS)} near "
                f"{rng.choice(_PLACES)}.")


def _question(rng: random.Random) -> str:
    forms = [
        lambda: f"Did {rng.choice(_NAMES)} {rng.choice(_VERBS_BASE)} {rng.choice(_THINGS)}?",
        lambda: f"Where did {rng.choice(_PEOPLE)} put {rng.choice(_THINGS)}?",
        lambda: f"Why is {rng.choice(_THINGS)} so {rng.choice(_ADJECTIVES)}?",
        lambda: f"Could you {rng.choice(_VERBS_BASE)} {rng.choice(_THINGS)} for me?",
        lambda: f"How many people were at {rng.choice(_PLACES)} {rng.choice(_TIMES)}?",
        lambda: f"Is {rng.choice(_NAMES)} still {rng.choice(_FEELINGS)} about it?",
        lambda: f"What time does {rng.choice(_PLACES)} open on {_weekday(rng)}?",
        lambda: f"Would {rng.choice(_PEOPLE)} rather walk or take the bus?",
    ]
    return _cap(rng.choice(forms)())


def _weekday(rng: random.Random) -> str:
    return rng.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                       "Saturday", "Sunday"])


def _exclamation(rng: random.Random) -> str:
    tail = rng.choice(["", f", {rng.choice(_NAMES)}",
                       f", the {rng.choice(_ADJECTIVES)} one is back"])
    return f"{rng.choice(_EXCLAIM)}{tail}!"


_MINUTES = ["05", "15", "30", "45", "50"]
_COUNTED = ["boats", "chairs", "geese", "lamps", "tickets", "sheep"]
_SHARES = ["votes", "seeds", "letters", "guests"]
_ORDINALS = ["first", "second", "third", "fourth"]


def _numbers(rng: random.Random) -> str:
    # Digits on purpose: the text front end (voicebot.text.spoken.normalize) spells them
    # for teacher and student alike, and users' replies are full of them.
    forms = [
        lambda: f"The train leaves at {rng.randint(1, 12)}:{rng.choice(_MINUTES)}.",
        lambda: f"{_cap(rng.choice(_PEOPLE))} paid ${rng.randint(2, 90)}.{rng.randint(10, 99)} "
                f"for {rng.choice(_THINGS)}.",
        lambda: f"There were {rng.choice(_NUMBERS_SMALL)} {rng.choice(_COUNTED)} "
                f"at {rng.choice(_PLACES)}.",
        lambda: f"{rng.choice(_NAMES)} was born on {rng.choice(_MONTHS)} {rng.randint(1, 28)}, "
                f"{rng.randint(1931, 2019)}.",
        lambda: f"The room is {rng.randint(3, 40)} feet wide and {rng.randint(2, 9)} feet tall.",
        lambda: f"Turn left after {rng.randint(100, 900)} metres, then take the "
                f"{rng.choice(_ORDINALS)} exit.",
        lambda: f"About {rng.randint(2, 95)} percent of the {rng.choice(_SHARES)} arrived late.",
        lambda: f"Call me back on {rng.randint(200, 999)} {rng.randint(1000, 9999)}, please.",
    ]
    return rng.choice(forms)()


_MOVED = ["wandered into", "ran across", "appeared behind", "slept beside"]


def _long(rng: random.Random) -> str:
    return _cap(f"{rng.choice(_OPENERS)} {rng.choice(_PEOPLE)} felt "
                f"{rng.choice(_FEELINGS)} when {rng.choice(_ANIMALS)} "
                f"{rng.choice(_MOVED)} "
                f"{rng.choice(_PLACES)}, so everyone {rng.choice(_ADVERBS)} "
                f"{rng.choice(_VERBS_PAST)} {rng.choice(_THINGS)} and went home.")


_SAID = ["laughed", "agreed", "waited", "sighed", "whispered", "shrugged"]
_DID = ["yawned", "jumped", "vanished", "growled"]
_WHEN = ["today", "yet", "again", "here", "now"]
_ANSWER = ["Yes", "No", "Maybe", "Sure"]
_POLITE = ["thanks", "of course", "I think so", "why not"]


def _short(rng: random.Random) -> str:
    forms = [
        lambda: f"{rng.choice(_NAMES)} {rng.choice(_SAID)}.",
        lambda: f"It was {rng.choice(_ADJECTIVES)}.",
        lambda: f"{_cap(rng.choice(_ANIMALS))} {rng.choice(_DID)}.",
        lambda: f"Not {rng.choice(_WHEN)}, {rng.choice(_NAMES)}.",
        lambda: f"{rng.choice(_ANSWER)}, {rng.choice(_POLITE)}.",
    ]
    return rng.choice(forms)()


def _compound(rng: random.Random) -> str:
    return (f"{_statement(rng)[:-1]}, but {rng.choice(_PEOPLE)} thought it looked "
            f"{rng.choice(_ADJECTIVES)}.")


def _reported(rng: random.Random) -> str:
    return _cap(f"{rng.choice(_NAMES)} told {rng.choice(_PEOPLE)} that "
                f"{rng.choice(_THINGS)} was {rng.choice(_ADJECTIVES)} and "
                f"{rng.choice(_ADJECTIVES)}.")


_LISTED = ["packed", "drew", "mentioned", "forgot", "counted", "noticed"]
_WHOSE = ["the", "my", "her", "our"]
_SEEMED = ["looked", "seemed", "sounded", "felt"]
_TAGS = ["did it not", "did it", "somehow", "I suppose"]


def _list(rng: random.Random) -> str:
    first, second, third = rng.sample(_NOUNS, 3)
    return _cap(f"{rng.choice(_PEOPLE + _NAMES)} {rng.choice(_LISTED)}"
                f" the {first}, the {second} and the {third}.")


def _describe(rng: random.Random) -> str:
    start = (f"{rng.choice(_WHOSE)} {rng.choice(_NOUNS)} {rng.choice(_SEEMED)} "
             f"{rng.choice(_ADJECTIVES)}")
    if rng.random() < 0.3:  # a tag question: rising intonation at the end
        return _cap(f"{start}, {rng.choice(_TAGS)}?")
    return _cap(f"{start} {rng.choice(_TIMES)}.")


# Weights: mostly statements of everyday length, with enough questions, exclamations,
# numbers and long sentences that intonation and pacing vary as in a chat reply.
_FORMS: list[tuple[Callable[[random.Random], str], int]] = [
    (_statement, 4), (_place, 3), (_question, 4), (_exclamation, 1), (_numbers, 3),
    (_long, 2), (_short, 1), (_compound, 2), (_reported, 2), (_list, 3),
          (_describe, 2)]


def sentences(count: int, seed: int = 0, exclude: set[str] | None = None,
              max_words: int | None = None) -> list[str]:
    """``count`` distinct generated sentences, the same for the same seed (and the
    first ``n`` of a bigger count are the same ``n``).

    ``exclude``: sentences never to produce, compared case- and space-insensitively
    (default: the English user prompt set). ``max_words``: only sentences this short
    (a quick test: the decoder's cost per step grows with the longest in a batch).
    """
    if exclude is None:
        from voicebot.training.prompts import load_prompts

        exclude = set(load_prompts("en"))
    banned = {_key(s) for s in exclude}
    rng = random.Random(f"teacher-corpus-{CORPUS_VERSION}-{seed}")
    forms = [form for form, weight in _FORMS for _ in range(weight)]
    out: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > 50 * count + 1000:
            raise ValueError(f"the grammar cannot make {count} distinct sentences")
        sentence = rng.choice(forms)(rng)
        key = _key(sentence)
        if key in seen or key in banned or (max_words and len(key.split()) > max_words):
            continue
        seen.add(key)
        out.append(sentence)
    return out


def _key(sentence: str) -> str:
    return " ".join(sentence.lower().split())


# ----- synthesis -----------------------------------------------------------------------
@dataclass
class CorpusItem:
    id: str
    text: str
    ids: np.ndarray  # token ids (the student's tokenizer)
    mel: np.ndarray  # (frames, 80) V1 log-mel
    # (frames,) the token position each mel frame belongs to, from the teacher's phoneme
    # durations (``voicebot.training.attention_targets``); None in an older corpus
    positions: np.ndarray | None = None


def seconds_of(items: list[CorpusItem]) -> float:

    return sum(len(it.mel) for it in items) * HOP_LENGTH / SAMPLE_RATE


def piper_model_file(voice: str = PIPER_VOICE) -> Path:

    root = resolve(voice)
    return root if root.suffix == ".onnx" else next(Path(root).glob("*.onnx"))


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _shard_path(folder: Path, index: int) -> Path:
    return folder / f"shard_{index:05d}.npz"


def _write_shard(path: Path, items: list[CorpusItem]) -> None:
    lengths = np.array([len(it.mel) for it in items], np.int64)
    id_lengths = np.array([len(it.ids) for it in items], np.int64)
    # float16 halves the cache (log-mels span about -11.5..2.5: 3 significant digits
    # are far below what the model can tell apart).
    extra = {}
    if all(it.positions is not None for it in items):
        extra["positions"] = np.concatenate([it.positions for it in items]).astype(np.float32)
    with atomic_path(path, suffix=".npz") as tmp:  # np.savez wants the .npz itself
        np.savez(tmp, mels=np.concatenate([it.mel for it in items]).astype(np.float16),
                 lengths=lengths, ids=np.concatenate([it.ids for it in items]).astype(np.int16),
                 id_lengths=id_lengths, texts=np.array([it.text for it in items]),
                 names=np.array([it.id for it in items]), **extra)


def _read_shard(path: Path) -> list[CorpusItem]:
    with np.load(path) as data:
        mels = np.split(data["mels"].astype(np.float32), np.cumsum(data["lengths"])[:-1])
        ids = np.split(data["ids"].astype(np.int64), np.cumsum(data["id_lengths"])[:-1])
        positions = (np.split(data["positions"], np.cumsum(data["lengths"])[:-1])
                     if "positions" in data.files else [None] * len(mels))
        return [CorpusItem(str(n), str(t), i, m, p) for n, t, i, m, p in
                zip(data["names"], data["texts"], ids, mels, positions, strict=True)]


def synthesize(folder: Path, texts: list[str], text_to_ids: Callable[[str], list[int]],
               *, token_text: Callable[[list[int]], str] | None = None, voice=None,
               on_progress: Callable[[dict], None] | None = None,
               threads: int = 2, seed: int | None = None) -> list[CorpusItem]:
    """Speak ``texts`` with the Piper voice into ``folder`` (shards of V1 mels + ids);
    shards already there are read, not redone. Returns every item, in order.

    ``on_progress`` gets {done, total, minutes, eta_s} after every shard.
    ``text_to_ids`` is the student's tokenizer; it runs on the text front end's
    normalized text (what ``TacotronVoice`` feeds it at inference). ``token_text``
    (ids -> one character per id) lets the teacher's phoneme durations be mapped onto
    the tokens (each item's ``positions``); without it they are not stored.
    ``voice``: a ``piper_durations.DurationVoice`` (default: the embedded Piper voice's).

    With ``seed`` (and no ``voice`` given) the Piper voice's sampling noise is seeded:
    onnxruntime draws it from a generator seeded when the voice loads, so a recipe's
    corpus is the same on every run. Unseeded, the same 12 sentences gave a small test
    base whose mel loss fell 35% in one run and 24% in another.
    """
    from concurrent.futures import ThreadPoolExecutor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "texts.json").write_text(json.dumps(texts, ensure_ascii=False), "utf-8")
    items: list[CorpusItem] = []
    shards = range(0, len(texts), SHARD_SIZE)
    started, made = time.monotonic(), 0  # sentences synthesised in this call
    # Coqui's espeak phonemizer runs one subprocess per call (~0.1 s): a few at a time
    # in threads overlap them with the Piper synthesis.
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for number, first in enumerate(shards):
            path = _shard_path(folder, number)
            batch = texts[first:first + SHARD_SIZE]
            shard = _read_shard(path) if path.is_file() else None
            if shard is None or [it.text for it in shard] != batch:
                if voice is None:
                    from voicebot.tts.piper import PiperVoice
                    from voicebot.tts.piper_durations import DurationVoice

                    if seed is not None:
                        import onnxruntime

                        onnxruntime.set_seed(seed)
                    model = piper_model_file()
                    voice = DurationVoice(PiperVoice(model, streaming=False, warm_up=False,
                                                     threads=1), model, threads=threads)
                if voice.sample_rate != SAMPLE_RATE:
                    raise ValueError(f"the teacher voice speaks at {voice.sample_rate} Hz, "
                                     f"the V1 mel needs {SAMPLE_RATE} Hz")
                id_jobs = [pool.submit(text_to_ids, normalize(t)) for t in batch]
                shard = []
                for k, text in enumerate(batch):
                    shard.append(_spoken_item(f"t{first + k:06d}", text, voice,
                                              id_jobs[k].result(), token_text))
                _write_shard(path, shard)
                made += len(batch)
            items.extend(shard)
            if on_progress is not None:
                done = len(items)
                per_sentence = (time.monotonic() - started) / made if made else 0.0
                on_progress({"done": done, "total": len(texts),
                             "minutes": round(seconds_of(items) / 60, 2),
                             "eta_s": round(per_sentence * (len(texts) - done), 1)})
    return items


def _spoken_item(name: str, text: str, voice, ids: list[int],
                 token_text: Callable[[list[int]], str] | None) -> CorpusItem:
    """One sentence said by the teacher: its trimmed mel, ids and frame positions."""
    from voicebot.training.attention_targets import frame_positions

    spoken = voice.speak(normalize(text))
    mel = mel_v1(spoken.audio).T
    start, stop = loud_span(mel)
    positions = None
    if token_text is not None and len(ids):
        every = frame_positions(spoken.phonemes, spoken.frames, token_text(list(ids)))
        # mel_v1 makes len(audio) // 256 frames, the durations' sum: one per frame
        every = np.concatenate([every, np.full(max(0, len(mel) - len(every)),
                                               every[-1] if every.size else 0.0)])
        positions = every[start:stop].astype(np.float32)
    return CorpusItem(name, text, np.asarray(ids, np.int64), mel[start:stop].copy(),
                      positions)


def loud_span(mel: np.ndarray) -> tuple[int, int]:
    """[start, stop) of ``mel`` (frames, mels) with the silence before the first and
    after the last loud frame cut to ``KEEP_SILENCE_FRAMES``."""
    loudest = mel.max(axis=1)
    loud = np.flatnonzero(loudest > loudest.max() - QUIET_NATS)
    if loud.size == 0:
        return 0, len(mel)
    return (max(0, loud[0] - KEEP_SILENCE_FRAMES),
            min(len(mel), loud[-1] + 1 + KEEP_SILENCE_FRAMES))



def iter_cached(folder: Path) -> Iterator[CorpusItem]:
    """Items already synthesised in ``folder``, shard by shard."""
    for path in sorted(Path(folder).glob("shard_*.npz")):
        yield from _read_shard(path)
