"""Piper (VITS) ONNX voices on onnxruntime-gpu, with espeak-ng phonemes.

A Piper voice is an ``.onnx`` file plus ``.onnx.json`` holding its phoneme-to-id map,
sample rate, espeak voice and inference scales. Text is normalized and split by
``voicebot.tts.text``; each piece is phonemised, mapped to ids and synthesised in one
call (VITS is not autoregressive, so a short first piece means early first audio).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from voicebot.cancel import CancelToken, is_cancelled
from voicebot.tts import onnx_runtime, piper_split
from voicebot.tts.base import AudioChunk, VoiceInfo
from voicebot.tts.espeak import phonemize
from voicebot.tts.text import pieces

log = logging.getLogger(__name__)

_BOS, _EOS, _PAD = "^", "$", "_"
# Punctuation the voices were trained with; espeak drops it, so it is put back by hand.
_CLAUSE_PUNCTUATION = re.compile(r"([,;:.!?]+)")

# Decoding the latent in windows (see piper_split): the first window is short so the
# first audio leaves early; each later one is at most WINDOW_GROWTH times the audio
# already handed out by this ``stream`` call (all its pieces so far), so it is ready
# before that audio has played (no gap while the real-time factor is below
# ~1/(WINDOW_GROWTH + 1)). Windows thus grow fast and stay few: each pays for
# 2 * CONTEXT_FRAMES of context, while the decoder's cost per frame does not depend on
# the window's length. A later piece of a reply mostly decodes in one window.
FIRST_WINDOW_FRAMES = 24  # ~0.28 s of audio at 22.05 kHz, 256 samples a frame
WINDOW_GROWTH = 3
MAX_WINDOW_FRAMES = 400  # ~4.6 s of audio; bounds the decoder's working memory (~90 MB)
CONTEXT_FRAMES = 12


@dataclass(frozen=True)
class PiperConfig:
    sample_rate: int
    espeak_voice: str
    phoneme_id_map: dict[str, list[int]]
    noise_scale: float
    length_scale: float
    noise_w: float
    language: str
    name: str

    @classmethod
    def load(cls, path: Path) -> PiperConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("phoneme_type", "espeak") != "espeak":
            raise ValueError(f"{path}: only espeak-phoneme Piper voices are supported, not "
                             f"{data.get('phoneme_type')!r}")
        inference = data.get("inference", {})
        return cls(
            sample_rate=int(data["audio"]["sample_rate"]),
            espeak_voice=data.get("espeak", {}).get("voice", "en-us"),
            phoneme_id_map={k: list(v) for k, v in data["phoneme_id_map"].items()},
            noise_scale=float(inference.get("noise_scale", 0.667)),
            length_scale=float(inference.get("length_scale", 1.0)),
            noise_w=float(inference.get("noise_w", 0.8)),
            language=data.get("language", {}).get("code") or data.get("espeak", {})
            .get("voice", ""),
            name=data.get("dataset", path.stem),
        )


class PiperVoice:
    """A Piper voice; implements ``voicebot.tts.base.Synthesizer``.

    ``streaming`` (default) runs the graph cut in two (``piper_split``) and decodes each
    piece in windows; without it, or when the cut fails, each piece is one call.
    ``parallel_windows`` windows decode at once, each on its own thread with ``threads``
    intra-op threads (default: two on a CPU with two or more cores, one on a GPU).
    """

    def __init__(self, model_path: Path, config_path: Path | None = None, *,
                 voice_id: str | None = None, threads: int = onnx_runtime.DEFAULT_THREADS,
                 device: str = "auto", warm_up: bool = True, streaming: bool = True,
                 parallel_windows: int | None = None) -> None:
        model_path = Path(model_path)
        config_path = Path(config_path or model_path.with_name(model_path.name + ".json"))
        if not model_path.is_file():
            raise FileNotFoundError(f"Piper voice model not found: {model_path}")
        if not config_path.is_file():
            raise FileNotFoundError(f"Piper voice config not found: {config_path}")
        self.config = PiperConfig.load(config_path)
        self.voice_id = voice_id or model_path.stem
        self._session = self._front = self._decoder = self._flow = None
        self._split: piper_split.SplitVoice | None = None
        if streaming:
            self._open_split(model_path, threads, device, voice_id)
        if self._front is None:
            self._session = onnx_runtime.session(model_path, threads=threads, device=device)
        self._input_names = {i.name for i in (self._front or self._session).get_inputs()}
        self._parallel = self._parallel_windows(parallel_windows)
        self._pool = (ThreadPoolExecutor(self._parallel, thread_name_prefix="piper-window")
                      if self._parallel > 1 else None)
        self._unknown_logged: set[str] = set()
        if warm_up:
            # The first run allocates buffers and picks kernels; pay that at load time,
            # not when the user is waiting for the first word.
            for _ in self.stream("Hello there."):
                pass

    def _open_split(self, model_path: Path, threads: int, device: str,
                    voice_id: str | None) -> None:
        try:
            split = piper_split.split_voice(model_path, voice_id)
        except Exception as exc:  # no onnx package, an unusual graph: whole-sentence calls
            log.warning("Piper voice %s will not stream within sentences: %s",
                        model_path.name, exc)
            return
        self._front = onnx_runtime.session(split.front, threads=threads, device=device)
        self._decoder = onnx_runtime.session(split.decoder, threads=threads, device=device)
        if split.flow is not None:
            self._flow = onnx_runtime.session(split.flow, threads=threads, device=device)
        self._split = split

    def _parallel_windows(self, wanted: int | None) -> int:
        """How many decoder windows run at once.

        Windows are independent once the latent is known, so two of them on two cores
        scale almost perfectly, unlike intra-op threads on these small convolutions.
        On a GPU one stream of calls already keeps it busy.
        """
        if self._decoder is None:
            return 1
        if wanted is not None:
            return max(1, wanted)
        if self._decoder.get_providers()[0] != "CPUExecutionProvider":
            return 1
        return min(2, os.cpu_count() or 1)

    @property
    def parallel_windows(self) -> int:
        return self._parallel

    @property
    def streams_within_sentences(self) -> bool:
        return self._decoder is not None

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(self.voice_id, self.config.name, "piper", self.config.language,
                          self.sample_rate)]

    # --- text -> ids -----------------------------------------------------------------

    def phonemes(self, text: str) -> str:
        """IPA for one piece of normalized text, with its clause punctuation kept."""
        parts = _CLAUSE_PUNCTUATION.split(text)
        out = []
        for i in range(0, len(parts), 2):
            words = parts[i]
            punctuation = parts[i + 1] if i + 1 < len(parts) else ""
            ipa = phonemize(words, self.config.espeak_voice) if words.strip() else ""
            mark = _strongest(punctuation)
            if ipa:
                out.append(ipa + mark)
            elif mark and out:
                out[-1] += mark
        return unicodedata.normalize("NFD", " ".join(out))

    def phoneme_ids(self, phonemes: str) -> list[int]:
        id_map = self.config.phoneme_id_map
        ids = [*id_map[_BOS], *id_map[_PAD]]
        for ch in phonemes:
            mapped = id_map.get(ch)
            if mapped is None:
                if ch not in self._unknown_logged:
                    self._unknown_logged.add(ch)
                    log.debug("dropping %r (U+%04X): not in voice %s's phoneme map", ch,
                              ord(ch), self.voice_id)
                continue
            ids.extend(mapped)
            ids.extend(id_map[_PAD])
        ids.extend(id_map[_EOS])
        return ids

    # --- synthesis -------------------------------------------------------------------

    def feeds(self, ids: list[int]) -> dict[str, np.ndarray]:
        """The graph's inputs for one phoneme-id sequence (the voice's scales; speaker 0):
        also what a graph cut from this voice's (``piper_durations``) is fed."""
        feeds = {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": np.asarray([self.config.noise_scale, self.config.length_scale,
                                  self.config.noise_w], dtype=np.float32),
        }
        if "sid" in self._input_names:
            feeds["sid"] = np.zeros(1, dtype=np.int64)
        return feeds

    @property
    def reads_latin_only(self) -> bool:
        """English voices skip other scripts instead of spelling them ("Chinese letter")."""
        return self.config.espeak_voice.lower().startswith("en")

    def set_noise(self, noise_scale: float | None = None, noise_w: float | None = None) -> None:
        """Change the VITS sampling noise (``0, 0`` makes every call say a text the same way).

        The noise is drawn inside the ONNX graph, whose random ops are not seeded per call,
        so checks that transcribe the voice back (the self-test, tests) turn it off rather
        than depend on a lucky draw: with the default noise Whisper once heard "friend"
        for "France" in the self-test.
        """
        self.config = replace(self.config,
                              noise_scale=self.config.noise_scale if noise_scale is None
                              else float(noise_scale),
                              noise_w=self.config.noise_w if noise_w is None else float(noise_w))

    def synthesize_ids(self, ids: list[int]) -> np.ndarray:
        """The whole piece's audio at once."""
        if self._session is None:
            return np.concatenate(list(self.stream_ids(ids)))
        return self._whole(ids)

    def stream_ids(self, ids: list[int]) -> Iterator[np.ndarray]:
        """The piece's audio in windows: a short first one, then longer ones."""
        for decode, _ in self._windows(ids, _Schedule()):
            yield decode()

    def _windows(self, ids: list[int], schedule: _Schedule
                 ) -> Iterator[tuple[Callable[[], np.ndarray], bool]]:
        """(decode, is_last) per decoder window, ``decode()`` giving its audio; one
        window without the split graphs. The front runs here, before the first window."""
        if self._decoder is None:
            yield functools.partial(self._whole, ids), True
            return
        front = self._front.run(None, self.feeds(ids))
        frames = front[0].shape[2]
        start = 0
        stop = min(frames, schedule.next_window())
        if self._flow is None:
            latent = front[0]  # (1, channels, frames)
        else:
            # The flow over the first window's frames only, so its audio leaves before
            # the flow has run over the whole piece; the rest follows after it.
            prior, mask = front
            latent = self._run_flow(prior, mask, 0, min(frames, stop + CONTEXT_FRAMES))
        while start < frames:
            schedule.handed_out += stop - start
            yield functools.partial(self._decode, latent, start, stop), stop == frames
            start = stop
            stop = min(frames, start + schedule.next_window())
            if latent.shape[2] < frames:  # the first window's flow only: now the rest
                latent = np.concatenate(
                    [latent, self._run_flow(prior, mask, latent.shape[2], frames)], axis=2)

    def _run_flow(self, prior: np.ndarray, mask: np.ndarray, lo: int, hi: int
                  ) -> np.ndarray:
        """Latent frames [lo, hi): the flow runs with its receptive field of context on
        both sides, so they equal those of one call over the whole piece."""
        split = self._split
        first = max(0, lo - split.flow_context)
        last = min(prior.shape[2], hi + split.flow_context)
        latent = self._flow.run(None, {split.prior_name: prior[:, :, first:last],
                                       split.mask_name: mask[:, :, first:last]})[0]
        return latent[:, :, lo - first:hi - first]

    def _whole(self, ids: list[int]) -> np.ndarray:
        return _as_audio(self._session.run(None, self.feeds(ids))[0])

    def _decode(self, latent: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Audio of latent frames [start, stop), decoded with context on both sides."""
        frames = latent.shape[2]
        lo, hi = max(0, start - CONTEXT_FRAMES), min(frames, stop + CONTEXT_FRAMES)
        audio = self._decoder.run(None, {self._split.latent_name: latent[:, :, lo:hi]})[0]
        audio = audio.reshape(-1)
        hop = len(audio) // (hi - lo)
        return _as_audio(audio[(start - lo) * hop:(stop - lo) * hop])

    def stream(self, text: str, cancel: CancelToken | None = None, *,
               split_first: bool = True) -> Iterator[AudioChunk]:
        jobs = self._chunk_jobs(text, cancel, split_first)
        if self._pool is None:
            for job in jobs:
                yield job()
                if is_cancelled(cancel):
                    return
            return
        yield from self._decode_ahead(jobs, cancel)

    def _chunk_jobs(self, text: str, cancel: CancelToken | None, split_first: bool
                    ) -> Iterator[Callable[[], AudioChunk]]:
        """One job per decoder window of every piece, in order."""
        schedule = _Schedule()
        for piece in pieces(text, split_first=split_first, latin_only=self.reads_latin_only):
            if is_cancelled(cancel):
                return
            ids = self.phoneme_ids(self.phonemes(piece.text))
            if len(ids) <= 3:  # only BOS, pad, EOS
                log.debug("nothing speakable in %r", piece.text)
                continue
            for decode, last in self._windows(ids, schedule):
                yield functools.partial(_chunk, decode, self.sample_rate, piece.text,
                                        last and piece.end_of_sentence)

    def _decode_ahead(self, jobs: Iterator[Callable[[], AudioChunk]],
                      cancel: CancelToken | None) -> Iterator[AudioChunk]:
        """The jobs' chunks in order, up to ``parallel_windows`` of them decoding at once.

        The stream's first window runs alone on this thread: sharing the cores with the
        next one would delay the first audio. The front of the next piece runs here too,
        beside the windows decoding in the pool, and one more window waits queued so a
        pool thread never idles while this thread runs a front (rtf 0.074 -> 0.069 with
        two windows at once, against 0.122 one at a time).
        """
        first = next(jobs, None)
        if first is None:
            return
        yield first()
        pending: deque[Future[AudioChunk]] = deque()
        try:
            for job in jobs:
                if is_cancelled(cancel):
                    return
                pending.append(self._pool.submit(job))
                if len(pending) > self._parallel:
                    yield pending.popleft().result()
            while pending and not is_cancelled(cancel):
                yield pending.popleft().result()
        finally:
            for future in pending:  # cancelled or abandoned: drop what has not started
                future.cancel()


class _Schedule:
    """Window lengths for one ``stream`` call: FIRST_WINDOW_FRAMES, then up to
    WINDOW_GROWTH times the frames handed out so far, at most MAX_WINDOW_FRAMES."""

    def __init__(self) -> None:
        self.handed_out = 0  # latent frames whose audio has been yielded

    def next_window(self) -> int:
        return min(MAX_WINDOW_FRAMES,
                   max(FIRST_WINDOW_FRAMES, WINDOW_GROWTH * self.handed_out))


def _chunk(decode: Callable[[], np.ndarray], sample_rate: int, text: str,
           end_of_sentence: bool) -> AudioChunk:
    return AudioChunk(decode(), sample_rate, text, end_of_sentence)


def _as_audio(samples: np.ndarray) -> np.ndarray:
    return np.clip(samples.reshape(-1), -1.0, 1.0).astype(np.float32, copy=False)


def _strongest(punctuation: str) -> str:
    """One mark for a run like "?!" or "...": the one that shapes intonation most."""
    for mark in "?!.;:,":
        if mark in punctuation:
            return mark
    return ""
