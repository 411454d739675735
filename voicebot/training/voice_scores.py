"""How good is a voice? Two numbers a user can trust, measured on their held-out takes.

- ``roundtrip_wer``: the voice says each held-out sentence, the app's own Whisper
  recogniser (tiny.en, the embedded default) transcribes it, and the word error rate is
  taken against what the voice was asked to say (``voicebot.text.spoken.normalize``: "$3"
  is read "three dollars"), scored with ``voicebot.asr.wer`` after the scoring
  normaliser. 0 = every word understood; noise gives 1.0 (every word deleted).
- ``similarity``: resemblance to the user. resemblyzer's GE2E speaker encoder embeds the
  user's held-out takes (one utterance-averaged, L2-normalized embedding: the user's
  voice print) and each sentence the voice says; ``similarity`` is the mean cosine
  between the voice's utterances and that print. ``base_similarity`` is the same figure
  for the starting (base) voice on the same sentences, so "did training bring it closer
  to me" is a comparison, not a guess.

What the numbers mean, measured here (2026-12-06; resemblyzer 0.1.4, 16 kHz, its own
volume normalisation and silence trimming; the stand-in user is hibari's "heart" voice
reading the prompt set, ``voicebot.training.stand_in_user``):

- same speaker: the stand-in user's held-out takes (prompts 20-29) against a print of
  their takes of prompts 0-19: 0.878-0.947 per sentence, mean 0.918 (on LibriVox
  clips the same encoder gives 0.85-0.92);
- different speaker: the embedded Piper voice (a male US voice) saying the same ten
  sentences against the same print: 0.431-0.542, mean 0.483 (LibriVox: 0.43-0.75);
- so "the user" and "another voice" are 0.435 apart on average, and the worst same-
  speaker sentence is still 0.34 above the best other-speaker one. Below ``LIKE_YOU``
  (0.80) a voice does not pass for the user; below ``UNLIKE_YOU`` (0.65) it is clearly
  someone else;
- white noise (2 s at -20 dBFS) scores 0.652-0.666: GE2E puts sound with no voice
  between the two speakers, so resemblance is only a verdict when Whisper understood at
  least ``MIN_UNDERSTOOD`` of the words;
- roundtrip WER through Whisper tiny.en on those ten sentences: the stand-in user's own
  takes 0.000, the Piper voice 0.034, noise 1.000 (every word missing).

GUI-free; torch, resemblyzer and the recogniser are imported and loaded only when used,
once per process.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from voicebot.audio.resample import ASR_RATE, StreamResampler

log = logging.getLogger(__name__)

Synthesize = Callable[[str], tuple[np.ndarray, int]]

ENCODER_RATE = 16_000  # resemblyzer's hparams.sampling_rate
# Cosine thresholds for the plain-words verdict (see the measurements above): the
# stand-in user's own takes never scored below 0.878, the Piper voice never above 0.542.
LIKE_YOU = 0.80
UNLIKE_YOU = 0.65
# Differences in similarity smaller than this are "about as close": one sentence more or
# less moves the mean of ten by about this much (per-sentence spread ~0.03-0.06).
SAME_MARGIN = 0.02
# Below this share of words understood, resemblance is not reported as a verdict.
MIN_UNDERSTOOD = 0.5
# Shorter than this after resemblyzer's silence trimming (webrtcvad heard no voice, e.g.
# noise or a hum), the untrimmed audio is embedded instead: an embedding needs speech-
# length input (its partial windows are 1.6 s) and should not fail on garbage.
MIN_TRIMMED_S = 0.5
SPEAKER_ENCODER_ID = "resemblyzer-ge2e"


# Speech rate of the stand-in user: 216 prompts, 10,856 characters in 9.9 min of stored
# takes: 18 characters per second.
# A Tacotron2 decoder is cut at DECODE_CAP times the length a sentence should take (and
# MIN_DECODE_S at least), so a voice whose stop token never fires (an early checkpoint)
# is still scored in bounded time.
CHARS_PER_S = 18.0
DECODE_CAP = 2.5
MIN_DECODE_S = 1.5
MEL_HOP_S = 256 / 22050  # the V1 mel's hop at 22.05 kHz
NEVER_STOP = 2.0  # a sigmoid never exceeds 1


class ScoringError(RuntimeError):
    """The inputs cannot be scored (no sentences, no reference takes, ...)."""


# ----- results ----------------------------------------------------------------------
@dataclass
class SentenceScore:
    text: str  # the sentence as given
    spoken: str  # what the voice was asked to say (numbers etc. in words)
    heard: str  # Whisper's transcript of the voice's audio
    errors: int  # word edits between spoken and heard
    words: int  # words in spoken (after the scoring normaliser)
    similarity: float | None  # cosine to the user's voice print
    audio_s: float


@dataclass
class VoiceScores:
    roundtrip_wer: float | None
    similarity: float | None
    sentences: list[SentenceScore] = field(default_factory=list)
    seconds: float = 0.0  # time taken to score

    @property
    def understood(self) -> float | None:
        """Share of the words Whisper got right (1 - WER, at least 0)."""
        return None if self.roundtrip_wer is None else max(0.0, 1.0 - self.roundtrip_wer)

    def to_dict(self) -> dict:
        return {"roundtrip_wer": _round(self.roundtrip_wer),
                "similarity": _round(self.similarity),
                "sentences": [{**asdict(s), "similarity": _round(s.similarity)}
                              for s in self.sentences],
                "seconds": round(self.seconds, 2)}


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


# ----- the models ---------------------------------------------------------------------
class SpeakerEncoder:
    """resemblyzer's GE2E encoder: mono audio at any rate -> a unit 256-d embedding."""

    def __init__(self, device: str = "cpu", weights: Path | None = None) -> None:
        from resemblyzer import VoiceEncoder

        self.model = VoiceEncoder(device, verbose=False,
                                  weights_fpath=weights or resemblyzer_weights())

    def embed(self, samples: np.ndarray, rate: int) -> np.ndarray:
        from resemblyzer import preprocess_wav

        audio = to_rate(samples, rate, ENCODER_RATE)
        if audio.size == 0:
            return np.zeros(256, np.float32)
        trimmed = preprocess_wav(audio)  # volume to -30 dBFS, long silences cut (webrtcvad)
        if len(trimmed) < MIN_TRIMMED_S * ENCODER_RATE:
            trimmed = audio
        embedding = np.asarray(self.model.embed_utterance(trimmed), np.float32)
        # An all-zero ReLU output makes resemblyzer divide by zero: no voice at all.
        return embedding if np.isfinite(embedding).all() else np.zeros(256, np.float32)

    def voice_print(self, takes: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
        """The utterance-averaged, re-normalized embedding of several takes."""
        if not takes:
            raise ScoringError("no reference takes to compare the voice with")
        return unit(np.mean([self.embed(samples, rate) for samples, rate in takes], axis=0))


def resemblyzer_weights() -> Path:
    """The encoder weights inside the resemblyzer wheel (the catalog's speaker encoder)."""
    from voicebot.models import UnknownModelError, resolve

    try:
        return resolve(SPEAKER_ENCODER_ID)
    except UnknownModelError:  # a catalog without the entry: the file where pip put it
        import resemblyzer

        return Path(resemblyzer.__file__).with_name("pretrained.pt")


@functools.lru_cache(maxsize=2)
def load_speaker_encoder(device: str = "cpu") -> SpeakerEncoder:
    return SpeakerEncoder(device)


def load_recognizer(device: str = "cpu"):
    """The app's default Whisper recogniser (tiny.en), whole-utterance decoding."""
    from voicebot.asr.factory import create_recognizer

    return create_recognizer("whisper", "whisper-tiny-en", device=device, streaming=False)


def unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else np.asarray(vector, np.float32)


def to_rate(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    if rate == target or samples.size == 0:
        return samples
    return StreamResampler(rate, target).process(samples, last=True)


def read_take(path: Path) -> tuple[np.ndarray, int]:
    from voicebot.audio.wav_io import read_wav

    audio = read_wav(path)
    return audio.samples, audio.sample_rate


class BoundedVoice:
    """A Tacotron2 voice whose decoder is cut at ``factor`` times the expected length of
    each sentence (other voices pass through); counts the sentences that ended on their
    own. ``never_stop``: the stop token is ignored, so every sentence decodes exactly its
    expected length (the speed figures then measure real work, not an early stop)."""

    def __init__(self, voice, factor: float = DECODE_CAP, never_stop: bool = False) -> None:
        self.voice = voice
        self.factor = factor
        self.never_stop = never_stop
        self.frames_per_step = int(getattr(getattr(voice, "backend", None),
                                           "frames_per_step", 1))
        self.full_cap = getattr(voice, "max_decoder_steps", None)
        self.stopped = 0
        self.sentences = 0

    @property
    def sample_rate(self) -> int:
        return self.voice.sample_rate

    def voices(self):
        return self.voice.voices()

    def cap_for(self, text: str) -> int:
        seconds = max(MIN_DECODE_S, self.factor * len(text) / CHARS_PER_S)
        return math.ceil(seconds / MEL_HOP_S / self.frames_per_step)

    def stream(self, text: str, cancel=None, *, split_first: bool = True):
        if self.full_cap is None:
            yield from self.voice.stream(text, cancel, split_first=split_first)
            return
        from voicebot.tts.text import pieces

        # The voice decodes each piece (sentence, or the clause split off first) on its
        # own, so each piece gets the cap of its own length.
        samples, cap = 0, 0
        for piece in pieces(text, split_first=split_first):
            for chunk in self._piece(piece.text, cancel):
                samples += len(chunk.samples)
                yield chunk
            cap += self.cap_for(piece.text)
        self.sentences += 1
        steps = samples / self.voice.sample_rate / MEL_HOP_S / self.frames_per_step
        self.stopped += int(steps < cap - 1)  # ended before the cap on its own

    def _piece(self, text: str, cancel):
        threshold = self.voice.stop_threshold
        self.voice.max_decoder_steps = min(self.full_cap, self.cap_for(text))
        if self.never_stop:
            self.voice.stop_threshold = NEVER_STOP
        try:
            yield from self.voice.stream(text, cancel, split_first=False)
        finally:
            self.voice.max_decoder_steps = self.full_cap
            self.voice.stop_threshold = threshold


# ----- scoring ------------------------------------------------------------------------
def transcribe(recognizer, samples: np.ndarray, rate: int) -> str:
    recognizer.reset()
    if samples.size == 0:
        return ""
    recognizer.feed(to_rate(samples, rate, ASR_RATE))
    hypotheses = recognizer.finish()
    return hypotheses[0].text if hypotheses else ""


def score_voice(synthesize: Synthesize, sentences: list[str], reference_wavs: list[Path], *,
                recognizer=None, encoder: SpeakerEncoder | None = None,
                voice_print: np.ndarray | None = None, wer: bool = True) -> VoiceScores:
    """Score a voice: ``synthesize(text) -> (samples, rate)`` says each sentence.

    ``reference_wavs``: the user's held-out takes (ignored when ``voice_print``, from
    ``encoder.voice_print``, is given: scoring two voices against the same takes embeds
    them once). ``wer=False`` skips the recogniser (resemblance only).
    """
    from voicebot.asr.wer import count_errors
    from voicebot.text.spoken import normalize

    if not sentences:
        raise ScoringError("no sentences to score the voice on")
    started = time.perf_counter()
    encoder = encoder or load_speaker_encoder()
    if voice_print is None:
        voice_print = encoder.voice_print([read_take(Path(p)) for p in reference_wavs])
    if wer and recognizer is None:
        recognizer = load_recognizer()
    details, errors, words = [], 0, 0
    for text in sentences:
        samples, rate = synthesize(text)
        samples = np.asarray(samples, np.float32).reshape(-1)
        spoken = normalize(text)
        heard, counts = "", None
        if wer:
            heard = transcribe(recognizer, samples, rate)
            counts = count_errors(spoken, heard)
            errors += counts.errors
            words += counts.ref_words
        similarity = (float(encoder.embed(samples, rate) @ voice_print)
                      if samples.size else None)
        details.append(SentenceScore(text, spoken, heard, counts.errors if counts else 0,
                                     counts.ref_words if counts else 0, similarity,
                                     round(len(samples) / rate, 3) if rate else 0.0))
    similarities = [d.similarity for d in details if d.similarity is not None]
    # A sentence the voice could not say at all counts as nothing like the user.
    similarities += [0.0] * (len(details) - len(similarities))
    return VoiceScores(roundtrip_wer=(errors / words if words else None) if wer else None,
                       similarity=float(np.mean(similarities)),
                       sentences=details, seconds=time.perf_counter() - started)


def synthesizer_function(synthesizer) -> Synthesize:
    """``synthesize`` for any voicebot ``Synthesizer`` (the whole sentence, joined)."""
    from voicebot.tts.base import collect

    def synthesize(text: str) -> tuple[np.ndarray, int]:
        samples, rate = collect(synthesizer.stream(text))
        return samples, rate or synthesizer.sample_rate

    return synthesize


def score_voices(voices: dict[str, Synthesize], sentences: list[str],
                 reference_wavs: list[Path], *, recognizer=None,
                 encoder: SpeakerEncoder | None = None) -> dict[str, VoiceScores]:
    """Several voices (e.g. {"adapted": ..., "base": ...}) against the same takes."""
    encoder = encoder or load_speaker_encoder()
    voice_print = encoder.voice_print([read_take(Path(p)) for p in reference_wavs])
    recognizer = recognizer or load_recognizer()
    return {name: score_voice(synthesize, sentences, reference_wavs, recognizer=recognizer,
                              encoder=encoder, voice_print=voice_print)
            for name, synthesize in voices.items()}


# ----- in words -----------------------------------------------------------------------
def describe(scores: VoiceScores, base_scores: VoiceScores | None = None) -> str:
    """The verdict for the Preview page, e.g. "Whisper understood 92% of the words;
    sounds closer to you than the starting voice (0.83 vs 0.61); ..."."""
    parts = []
    if scores.understood is not None:
        parts.append(f"Whisper understood {100 * scores.understood:.0f}% of the words")
    sim = scores.similarity
    base = base_scores.similarity if base_scores is not None else None
    if sim is not None and scores.understood is not None and \
            scores.understood < MIN_UNDERSTOOD:
        # Noise scored 0.66 against the stand-in user's print: without words the
        # resemblance figure is not evidence of anything.
        parts.append(f"resemblance {sim:.2f}, but with so few words understood it means "
                     "little")
        sim = None
    if sim is not None and base is not None:
        if sim > base + SAME_MARGIN:
            parts.append(f"sounds closer to you than the starting voice ({sim:.2f} vs "
                         f"{base:.2f})")
        elif sim < base - SAME_MARGIN:
            parts.append(f"sounds less like you than the starting voice ({sim:.2f} vs "
                         f"{base:.2f})")
        else:
            parts.append(f"sounds about as close to you as the starting voice ({sim:.2f} "
                         f"vs {base:.2f})")
    if sim is not None:
        if sim >= LIKE_YOU:
            parts.append(f"resemblance {sim:.2f}: it could pass for you")
        elif sim >= UNLIKE_YOU:
            parts.append(f"resemblance {sim:.2f}: some of your voice, not yet you "
                         "(your own takes score about 0.9)")
        else:
            parts.append(f"resemblance {sim:.2f}: it does not sound like you yet "
                         "(your own takes score about 0.9)")
    if not parts:
        return "Not scored yet."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


# ----- a training run on its held-out takes ------------------------------------------
HELDOUT_FILE = "heldout.json"
SCORES_FILE = "scores.json"


def heldout_ids(run_folder: Path) -> list[str]:
    """The held-out take ids a run lists in heldout.json (a list, or under "takes"/"ids")."""
    import json

    data = json.loads((Path(run_folder) / HELDOUT_FILE).read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = data.get("takes", data.get("ids", data.get("heldout", [])))
    return [item["id"] if isinstance(item, dict) else str(item) for item in data]


def heldout_material(data: Path, take_ids: list[str]) -> tuple[list[str], list[Path]]:
    """(sentences, wav paths) of the given takes of an LJSpeech-layout dataset."""
    from voicebot.training.dataset import read_metadata

    texts = dict(read_metadata(Path(data) / "metadata.csv"))
    missing = [t for t in take_ids if t not in texts]
    if missing:
        raise ScoringError(f"held-out takes not in {data}: {', '.join(missing[:5])}")
    return [texts[t] for t in take_ids], [Path(data) / "wavs" / f"{t}.wav" for t in take_ids]


def score_run(run_folder: Path, data: Path, *, base_voice: str | Path | None = None,
              take_ids: list[str] | None = None, device: str = "cpu",
              recognizer=None, encoder: SpeakerEncoder | None = None) -> dict:
    """Score the voice in ``run_folder`` (and ``base_voice``, when given) on the held-out
    takes of ``data``; writes ``<run_folder>/scores.json`` and returns what it wrote.

    The voices run on the torch engine: a checkpoint scored once is not worth an ONNX
    export (~137 MB in the conversion cache, and ~20 s, per checkpoint).
    """
    import json

    from voicebot.atomic_write import write_text_atomic
    from voicebot.tts.voices import VoiceOptions, load_voice

    take_ids = take_ids if take_ids is not None else heldout_ids(run_folder)
    sentences, wavs = heldout_material(data, take_ids)
    options = VoiceOptions(engine="torch", device=device)
    voices = {"adapted": BoundedVoice(load_voice(str(run_folder), options))}
    if base_voice is not None:
        voices["base"] = BoundedVoice(load_voice(str(base_voice), options))
    scores = score_voices({name: synthesizer_function(voice) for name, voice in voices.items()},
                          sentences, wavs, recognizer=recognizer, encoder=encoder)
    adapted, base = scores["adapted"], scores.get("base")
    result = {"roundtrip_wer": _round(adapted.roundtrip_wer),
              "similarity": _round(adapted.similarity),
              "base_similarity": _round(base.similarity) if base else None,
              "base_roundtrip_wer": _round(base.roundtrip_wer) if base else None,
              "verdict": describe(adapted, base), "takes": take_ids,
              "stopped": f"{voices['adapted'].stopped}/{voices['adapted'].sentences}",
              "adapted": adapted.to_dict(), "base": base.to_dict() if base else None,
              "base_voice": str(base_voice) if base_voice is not None else None}
    write_text_atomic(Path(run_folder) / SCORES_FILE, json.dumps(result, indent=1))
    return result
