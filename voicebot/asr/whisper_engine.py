"""Streaming Whisper recogniser for push-to-talk.

While audio comes in, the buffer is re-decoded greedily at a bounded rate (at most every
``partial_interval`` seconds of audio, and never more than half the time spent
decoding), and the prefix two decodes agree on is committed (``LocalAgreement``). At
``finish`` only the uncommitted tail is decoded, with beam search for the n-best list, so
the result arrives soon after release.

Utterances longer than Whisper's 30 s window are cut into segments at the quietest
moment before ``max_segment_seconds``; closed segments keep only their text and score,
so memory stays bounded however long the input.
"""

from __future__ import annotations

import functools
import logging
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voicebot.asr.audio_input import sanitize
from voicebot.asr.local_agreement import LocalAgreement
from voicebot.asr.recognizer import Hypothesis, Partial, PartialCallback, WordTiming
from voicebot.asr.whisper_timing import word_timings
from voicebot.audio.resample import ASR_RATE
from voicebot.models import resolve
from voicebot.models.conversions import converted

if TYPE_CHECKING:
    from voicebot.asr.whisper_model import WhisperModel
    from voicebot.asr.whisper_onnx import OnnxWhisperModel

log = logging.getLogger(__name__)

# Below this peak level the input is digital silence: no decode at all.
SILENCE_PEAK = 1e-3
# At release, audio after the last partial decode that stays below this fraction of the
# utterance's peak is the trailing pause, not words: the final decode then reuses that
# partial's encoding instead of encoding again (~40 ms of a ~130 ms final on 2 cores).
TRAILING_QUIET_RATIO = 0.05
# While the user still holds the button, this much quiet after new speech triggers a
# partial decode at once instead of at the next interval: by the release it covers every
# word, so the final decode reuses its encoding and its text is the guess the chat model
# can start on (pipeline/speculation.py). The interval's own decodes go on as before.
# 150 ms made the guess come about when a button let go 200 ms after the last word was
# released: the reply's first clause was rarely spoken ahead (`voicebot bench turn
# --json`, 10 turns, two runs each, 2026-12-07: release to first sound a median 453 / 459
# ms; 100 ms: 361 / 369; 80 ms: 342 / 379). Over the ten pocketsphinx recordings (45 s
# of read speech with its own pauses) 100 ms decodes 68 partials instead of 66, at the
# same CPU time and the same final words.
PAUSE_DECODE_S = 0.10
# Final beam search: stop this many steps after the first hypothesis ended.
FINAL_STEPS_AFTER_FIRST_END = 3
# Checking for speech left out after an early end of text (see _continue_cut_short):
# only for utterances this long, resuming this long after the last word's start, when at
# least this much clear speech remains, at most this many times.
CONTINUE_MIN_AUDIO = 2.0
LAST_WORD_MAX_SECONDS = 1.0
CONTINUE_MIN_SPEECH = 0.3
MAX_CONTINUATIONS = 2
# English speech gave 3.5-9 Whisper tokens per second of active speech on the
# pocketsphinx recordings (4.1-9 for those over 2 s); a transcript that lost a sentence
# had 3.1. Below this rate the transcript is checked against the audio.
CONTINUE_MAX_TOKENS_PER_SECOND = 3.6
# A final decoded from the committed prefix below this mean log-probability per token
# (Whisper's own temperature-fallback threshold), or cut at the token cap, is decoded
# again without the prefix (see WhisperRecognizer._decode_final).
FREE_FINAL_BELOW_LOGPROB = -1.0
# Text that gzip shrinks more than this is a loop (Whisper's compression_ratio_threshold).
MAX_COMPRESSION_RATIO = 2.4
# Whisper's own "no speech" rule: a likely no-speech token and an unconfident transcript.
NO_SPEECH_PROB = 0.6
NO_SPEECH_AVG_LOGPROB = -1.0
# The conversion name of the CPU recogniser's ONNX export (models/conversions).
ONNX_CONVERSION = "onnx-cpu"


def converted_model_dir(model_id: str) -> Path:
    """The transformers folder for a catalog Whisper model, converted once and cached."""
    from voicebot.asr.whisper_convert import CONVERTER_VERSION, convert_ct2_whisper

    source = resolve(model_id)
    if (source / "model.safetensors").is_file():
        return source  # already a transformers model (e.g. imported by the user)
    files = [source / name for name in ("model.bin", "config.json", "tokenizer.json")]
    return converted(model_id, "transformers", files,
                     functools.partial(convert_ct2_whisper, source),
                     version=CONVERTER_VERSION)


def load_whisper(model_id: str = "whisper-tiny-en", device: str = "auto",
                 cpu_threads: int = 1) -> WhisperModel | OnnxWhisperModel:
    """A loaded, warmed-up model, shared by every recogniser in the process.

    On the CPU it is the ONNX export (``whisper_onnx``: no torch or transformers in the
    process), elsewhere transformers on torch. ``cpu_threads``: intra-op threads of
    either; one keeps ASR from collapsing when another stage runs at the same time
    (ARCHITECTURE.md, CPU thread budget).
    """
    return _load_whisper(model_id, resolve_device(device), cpu_threads)


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when torch can use a GPU here, else "cpu"; others as given."""
    if device != "auto":
        return device
    from voicebot.lm.loading import cuda_available

    return "cuda" if cuda_available() else "cpu"


def runtime_model(model_dir: Path, cache_id: str, device: str, cpu_threads: int,
                  models_dir: Path | None = None) -> WhisperModel | OnnxWhisperModel:
    """The model in the transformers folder ``model_dir``, ready to decode on ``device``:
    on the CPU its ONNX export (built once, cached as ``cache_id``'s "onnx-cpu"
    conversion, in ``models_dir`` when given), else a ``WhisperModel``."""
    if device != "cpu":
        from voicebot.asr.whisper_model import WhisperModel

        return WhisperModel(model_dir, device=device, cpu_threads=cpu_threads)
    from voicebot.asr.whisper_onnx import OnnxWhisperModel

    return OnnxWhisperModel(onnx_export_dir(model_dir, cache_id, models_dir),
                            cpu_threads=cpu_threads)


def onnx_export_dir(model_dir: Path, cache_id: str, models_dir: Path | None = None) -> Path:
    """The ONNX export of the transformers folder ``model_dir``, built once and cached."""
    from voicebot.asr.whisper_onnx_export import EXPORT_VERSION, export_whisper

    files = [model_dir / name for name in ("model.safetensors", "config.json",
                                            "generation_config.json", "tokenizer.json")]
    return converted(cache_id, ONNX_CONVERSION, files,
                     functools.partial(export_whisper, model_dir), version=EXPORT_VERSION,
                     models_dir=models_dir)


def prepare_cpu_model(model_id: str) -> Path:
    """Build (once) what the CPU recogniser loads for a catalog Whisper model: the
    transformers folder and its ONNX export; used by `models prepare`."""
    return onnx_export_dir(converted_model_dir(model_id), model_id)


@functools.lru_cache(maxsize=2)
def _load_whisper(model_id: str, device: str, cpu_threads: int):
    model = runtime_model(converted_model_dir(model_id), model_id, device, cpu_threads)
    model.warm_up()
    return model


class WhisperRecognizer:
    sample_rate = ASR_RATE

    def __init__(self, model: WhisperModel | OnnxWhisperModel, *, nbest: int = 5,
                 beam_size: int | None = None,
                 streaming: bool = True, partial_interval: float = 0.5,
                 max_segment_seconds: float = 25.0, language: str = "en",
                 word_timings: bool = False, on_partial: PartialCallback | None = None):
        self.model = model
        self.nbest = nbest
        self.beam_size = beam_size
        self.streaming = streaming
        self.partial_interval = partial_interval
        self.max_segment = int(max_segment_seconds * ASR_RATE)
        self.language = language
        # Word timings cost one more decoder pass per hypothesis (~15 ms each here).
        self.word_timings = word_timings
        self.on_partial = on_partial
        tokenizer = model.tokenizer
        starts = {i for tok, i in tokenizer.get_vocab().items() if tok.startswith("\u0120")}
        self._agreement = LocalAgreement(lambda token: token in starts)
        # One 30 s buffer, reused: feed() copies into it, nothing grows.
        self._buffer = np.zeros(int(30 * ASR_RATE), dtype=np.float32)
        self.reset()

    # ------------------------------------------------------------------ protocol
    def reset(self) -> None:
        self._length = 0
        self._decoded_at = 0
        self._next_decode_gap = int(self.partial_interval * ASR_RATE)
        self._agreement.reset()
        self._segments: list[tuple[str, float, int]] = []  # text, logprob, tokens
        self._total_samples = 0
        self._peak = 0.0
        self.last_partial: Partial | None = None
        self.decode_seconds: list[float] = []
        self._last_encoded = None  # the latest partial decode's EncodedAudio

    def feed(self, audio: np.ndarray) -> Partial | None:
        samples = sanitize(audio)
        if samples.size:
            self._peak = max(self._peak, float(np.abs(samples).max()))
        offset = 0
        while offset < samples.size:
            room = self.max_segment - self._length
            if room <= 0:
                self._close_segment()
                continue
            take = min(room, samples.size - offset)
            self._buffer[self._length:self._length + take] = samples[offset:offset + take]
            self._length += take
            self._total_samples += take
            offset += take
        if not self.streaming:
            return None
        if self._length - self._decoded_at < self._next_decode_gap \
                and not self._speech_then_pause():
            return None
        return self._partial()

    def guess(self) -> str | None:
        """What ``finish()`` will most likely say, without decoding: the last partial's
        text when nothing but a quiet pause came after it (the final decode then starts
        from that partial's encoding and stable prefix); None when words came after it."""
        if self.last_partial is None or self._reusable_encoding() is None:
            return None
        return self.last_partial.text or None

    def finish(self, nbest: int | None = None) -> list[Hypothesis]:
        """The n-best list for the utterance ([] for no speech); then resets."""
        nbest = max(1, nbest or self.nbest)
        try:
            return self._final(nbest)
        finally:
            self.reset()

    # ------------------------------------------------------------------ internals
    def _has_speech_energy(self) -> bool:
        return self._peak >= SILENCE_PEAK

    def _speech_then_pause(self) -> bool:
        """New speech since the last decode, then ``PAUSE_DECODE_S`` of quiet."""
        pause_start = self._length - int(PAUSE_DECODE_S * ASR_RATE)
        if pause_start <= self._decoded_at or not self._has_speech_energy():
            return False
        quiet = TRAILING_QUIET_RATIO * self._peak
        return (_peak(self._buffer[pause_start:self._length]) <= quiet
                and _peak(self._buffer[self._decoded_at:pause_start]) > quiet)

    def _partial(self) -> Partial | None:
        if not self._has_speech_energy():
            self._decoded_at = self._length
            return None
        started = time.perf_counter()
        audio = self._buffer[:self._length]
        self._last_encoded = self.model.encode(audio)
        result = self.model.decode(audio, prefix=self._agreement.committed,
                                   language=self.language, encoded=self._last_encoded)
        elapsed = time.perf_counter() - started
        self._decoded_at = self._length
        # Keep decoding to at most half of real time, so feeding never falls behind.
        self._next_decode_gap = int(max(self.partial_interval, 2 * elapsed) * ASR_RATE)
        best = result.sequences[0]
        tokens = best.tokens
        # A decode that ran to the token cap or repeats itself is Whisper looping on a
        # fragment: shown, never committed (two such partials agreed on "a long long
        # long ..." and forced it into the final; espeak, 2026-12-07).
        if best.finished and not _repetitive(self.model.text(tokens)):
            self._agreement.update(tokens)
        committed = self._agreement.committed
        partial = Partial(
            committed=self._join(*(s[0] for s in self._segments), self.model.text(committed)),
            tentative=self.model.text(tokens[len(committed):]),
            audio_seconds=self._total_samples / ASR_RATE)
        self.last_partial = partial
        if self.on_partial:
            self.on_partial(partial)
        return partial

    def _close_segment(self) -> None:
        """Decode the buffer up to its quietest recent moment; keep the rest."""
        cut = _quietest_cut(self._buffer[:self._length])
        if _peak(self._buffer[:cut]) >= SILENCE_PEAK:
            result = self.model.decode(self._buffer[:cut], language=self.language)
            best = result.sequences[0]
            if not _is_no_speech(result):
                self._segments.append((self.model.text(best.tokens), best.logprob,
                                       best.n_decoded))
        rest = self._length - cut
        self._last_encoded = None
        self._buffer[:rest] = self._buffer[cut:self._length]
        self._length = rest
        self._decoded_at = 0
        self._agreement.reset()

    def _final(self, nbest: int) -> list[Hypothesis]:
        if not self._has_speech_energy() or (self._length == 0 and not self._segments):
            return []
        hypotheses: list[Hypothesis] = []
        if self._length and _peak(self._buffer[:self._length]) >= SILENCE_PEAK:
            beam = self.beam_size or (nbest if nbest > 1 else 1)
            started = time.perf_counter()
            audio = self._buffer[:self._length]
            encoded = self._reusable_encoding() or self.model.encode(audio)
            result = self._decode_final(audio, encoded, beam, nbest)
            self.decode_seconds.append(time.perf_counter() - started)
            if not _is_no_speech(result):
                for rank, seq in enumerate(result.sequences):
                    hypotheses.append(Hypothesis(
                        text=self.model.text(seq.tokens), acoustic_score=seq.logprob,
                        n_tokens=seq.n_decoded, engine_rank=rank,
                        extras={"no_speech_prob": result.no_speech_prob,
                                "finished": seq.finished}))
                    if self.word_timings and not self._segments:
                        # (After a segment cut only the current segment has audio left.)
                        hypotheses[-1].words = word_timings(
                            self.model, encoded, seq.tokens, self.model.prompt(self.language))
                self._continue_cut_short(audio, encoded, result.sequences[0].tokens,
                                         hypotheses)
        if self._segments:
            head = self._join(*(s[0] for s in self._segments))
            head_score = sum(s[1] for s in self._segments)
            head_tokens = sum(s[2] for s in self._segments)
            if not hypotheses:
                hypotheses.append(Hypothesis(text="", acoustic_score=0.0))
            for h in hypotheses:
                h.text = self._join(head, h.text)
                h.acoustic_score += head_score
                h.n_tokens += head_tokens
        return [h for h in hypotheses if h.text] or []

    def _decode_final(self, audio: np.ndarray, encoded, beam: int, nbest: int):
        """The final beam search from the committed prefix; and, when that looks broken
        (no end of text within the token cap, or an average log-probability Whisper
        itself would retry), once more without the prefix, keeping the better ranked.

        A prefix committed from the first partials can be wrong and then poison the
        final: espeak's "Set an alarm for half past six tomorrow." streamed as "I'm not
        sure if" and ended "... a long long long ..." to the cap (2026-12-07, parity's
        espeak-sentences app_streaming 0.379 against 0.040 for the whole clip).
        """
        committed = self._agreement.committed
        options = dict(beam_size=beam, nbest=nbest, language=self.language,
                       steps_after_first_end=FINAL_STEPS_AFTER_FIRST_END, encoded=encoded)
        result = self.model.decode(audio, prefix=committed, **options)
        best = result.sequences[0]
        if not committed or (best.finished and best.mean_logprob >= FREE_FINAL_BELOW_LOGPROB
                             and not _repetitive(self.model.text(best.tokens))):
            return result
        free = self.model.decode(audio, **options)
        log.debug("final from the committed prefix %r looked broken (%.2f/token); "
                  "free decode %.2f/token", self.model.text(best.tokens),
                  best.mean_logprob, free.sequences[0].mean_logprob)
        seen, merged = set(), []
        # A hypothesis that ended beats one cut at the cap (a loop scores well per token).
        for seq in sorted(result.sequences + free.sequences,
                          key=lambda q: (q.finished, q.mean_logprob), reverse=True):
            if tuple(seq.tokens) not in seen:
                seen.add(tuple(seq.tokens))
                merged.append(seq)
        result.sequences = merged[:nbest]
        return result

    def _continue_cut_short(self, audio: np.ndarray, encoded, tokens: list[int],
                            hypotheses: list[Hypothesis]) -> None:
        """Decode speech that Whisper left out after ending early, and append it.

        Without timestamps Whisper sometimes ends the transcript at a sentence end even
        though more speech follows a pause ("...himself." and the next sentence is
        lost; seen with tiny.en on two sentences 1 s apart, with the 30 s window too).
        Its own transcribe loop avoids this by seeking past what was decoded. Here the
        best hypothesis is aligned to the audio; if clear speech remains after its last
        word, that remainder is decoded greedily and appended to every hypothesis.
        """
        for _ in range(MAX_CONTINUATIONS):
            if len(audio) < CONTINUE_MIN_AUDIO * ASR_RATE or not tokens:
                return
            # Aligning costs ~30 ms; a transcript with a normal number of tokens for
            # the amount of speech covers it all, so only a sparse one is checked.
            active = _active_seconds(audio, self._peak)
            if len(tokens) >= CONTINUE_MAX_TOKENS_PER_SECOND * active:
                return
            words = word_timings(self.model, encoded, tokens, self.model.prompt(self.language))
            if not words:
                return
            # The last word's start is reliable; its end is not (it runs to end-of-text).
            resume = int((words[-1].start + LAST_WORD_MAX_SECONDS) * ASR_RATE)
            rest = audio[resume:]
            if _active_seconds(rest, self._peak) < CONTINUE_MIN_SPEECH:
                return
            encoded = self.model.encode(rest)
            result = self.model.decode(rest, language=self.language, encoded=encoded)
            if _is_no_speech(result):
                return
            best = result.sequences[0]
            text = self.model.text(best.tokens)
            if not text:
                return
            log.debug("Whisper ended early; decoded %.1f s more: %r", len(rest) / ASR_RATE,
                      text)
            offset = resume / ASR_RATE
            extra_words = (word_timings(self.model, encoded, best.tokens,
                                        self.model.prompt(self.language))
                           if self.word_timings else None)
            for h in hypotheses:
                h.text = self._join(h.text, text)
                h.acoustic_score += best.logprob
                h.n_tokens += best.n_decoded
                h.extras["continued"] = h.extras.get("continued", 0) + 1
                if h.words is not None and extra_words is not None:
                    h.words = h.words + [WordTiming(w.word, w.start + offset, w.end + offset)
                                         for w in extra_words]
            audio, tokens = rest, best.tokens

    def _reusable_encoding(self):
        """The last partial's encoding if only a quiet pause came after it, else None."""
        encoded = self._last_encoded
        if encoded is None or encoded.n_samples > self._length:
            return None
        after = self._buffer[encoded.n_samples:self._length]
        if _peak(after) > TRAILING_QUIET_RATIO * self._peak:
            return None
        return encoded

    @staticmethod
    def _join(*parts: str) -> str:
        return " ".join(p for p in parts if p)


def _active_seconds(audio: np.ndarray, utterance_peak: float, frame: int = 480) -> float:
    """Seconds of 30 ms frames loud enough to be speech (relative to the utterance)."""
    n = len(audio) // frame
    if n == 0:
        return 0.0
    rms = np.sqrt((audio[: n * frame].reshape(n, frame) ** 2).mean(axis=1))
    threshold = max(0.05 * utterance_peak, SILENCE_PEAK)
    return float((rms > threshold).sum()) * frame / ASR_RATE


def _repetitive(text: str) -> bool:
    """Whisper's own loop test: text that compresses too well repeats itself."""
    data = text.encode("utf-8")
    return len(data) > 0 and len(data) / len(zlib.compress(data)) > MAX_COMPRESSION_RATIO


def _peak(audio: np.ndarray) -> float:
    return float(np.abs(audio).max()) if audio.size else 0.0


def _is_no_speech(result) -> bool:
    best = result.sequences[0]
    avg = best.mean_logprob
    return (not best.tokens) or (result.no_speech_prob > NO_SPEECH_PROB
                                 and avg < NO_SPEECH_AVG_LOGPROB)


def _quietest_cut(audio: np.ndarray, search_seconds: float = 5.0,
                  frame_seconds: float = 0.1) -> int:
    """Index of the quietest 100 ms frame in the last few seconds (where to cut)."""
    frame = int(frame_seconds * ASR_RATE)
    start = max(0, len(audio) - int(search_seconds * ASR_RATE))
    region = audio[start:len(audio) - len(audio[start:]) % frame]
    if len(region) < frame:
        return len(audio)
    energy = (region.reshape(-1, frame) ** 2).mean(axis=1)
    return start + int(np.argmin(energy)) * frame + frame // 2
