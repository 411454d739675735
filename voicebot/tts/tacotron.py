"""Tacotron2 + HiFi-GAN voices, streamed: audio leaves while the decoder still runs.

The vocoder is HiFi-GAN V1 (``voicebot.tts.hifigan_v1``) unless a Coqui HiFi-GAN
checkpoint is given; the Tacotron2's mel is brought to the vocoder's by
``voicebot.tts.mel_v1.renormalizer``.

``TacotronVoice`` implements the ``Synthesizer`` protocol over a backend that runs the
model pieces of ``voicebot.tts.tacotron_parts``:

- ``TorchBackend``: the Coqui modules in torch (CUDA and fp16 when a GPU is present);
- ``OnnxBackend`` (``voicebot.tts.tacotron_onnx``): the same pieces exported to ONNX and
  run on onnxruntime, the decoder step by step with its state kept in OrtValues.

Per text piece: Coqui's tokenizer turns text into ids, the encoder runs once, the decoder
steps until its stop token fires (Coqui's rule), ``max_decoder_steps``, or the length cap
from the piece's ids (``frame_cap``), and ``MelToAudio`` turns the growing mel into audio
windows (``voicebot.tts.mel_stream``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from voicebot.cancel import CancelToken, is_cancelled
from voicebot.tts.base import AudioChunk, VoiceInfo
from voicebot.tts.mel_stream import MelToAudio
from voicebot.tts.text import pieces

log = logging.getLogger(__name__)

# A voice whose stop token never fires (an undertrained one: a 400-step Piper-taught base
# fired it on 0 of 10 unseen sentences) would speak max_decoder_steps of babble per piece
# (1000 steps x r=5 = 58 s for the base). So each piece is also capped by its length in
# ids. Measured on the 166 teacher sentences (Piper joe-medium, espeak phoneme ids from
# Coqui's tokenizer, silences trimmed to 4 frames): 4.27 mel frames per id at the median,
# 5.46 at p99, 5.75 at most. 12 frames per id is 2.2x p99: room for a voice fine-tuned on
# a slower speaker, and for character ids (LJSpeech reads ~5.7 frames per character). The
# floor of 1.5 s (130 frames of 256 samples at 22.05 kHz) covers a one-word piece. Both
# are at least voice_scores' own cap (2.5 x 18 characters/s = 12 frames per character,
# 1.5 s at least; phoneme ids outnumber characters, 41 for 35 in a teacher sentence), so
# a scoring run that caps pieces itself is never cut earlier by this one.
MAX_FRAMES_PER_ID = 12.0
MIN_CAP_FRAMES = 130


def frame_cap(ids: int, frames_per_id: float | None = MAX_FRAMES_PER_ID) -> int | None:
    """The most mel frames a piece of ``ids`` tokens may last (None: no cap)."""
    if frames_per_id is None:
        return None
    return max(MIN_CAP_FRAMES, int(np.ceil(frames_per_id * ids)))


class Backend(Protocol):
    """What the streaming loop needs from a model runtime (arrays are numpy on the host)."""

    frame_channels: int
    frames_per_step: int
    hop: int
    name: str

    def start(self, ids: np.ndarray) -> None:
        """Encode one utterance and reset the decoder state."""

    def step(self, memory: np.ndarray, prenet_masks: tuple[np.ndarray, np.ndarray]
             ) -> tuple[np.ndarray, float]:
        """One decoder step: (frames (frames_per_step * channels,), stop logit)."""

    def postnet(self, mel: np.ndarray) -> np.ndarray: ...

    def vocode(self, mel: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """The Coqui modules in torch; fp16 on CUDA (the decoder's LSTMs are fine in half).

    The model and generator given are moved to the device and dtype (not copied).
    """

    def __init__(self, model, generator, *, device: str = "auto", fp16: bool = True) -> None:
        import torch

        from voicebot.tts import tacotron_parts as parts

        parts.check_supported(model)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        # torch's CPU thread pool is process-wide (shared with ASR and the chat model), so
        # it is not set here; whoever owns the process sets it once.
        self.torch = torch
        self.device = torch.device(device)
        self.dtype = torch.float16 if (fp16 and self.device.type == "cuda") else torch.float32
        self.name = f"torch-{self.device.type}{'-fp16' if self.dtype == torch.float16 else ''}"
        self._model = model
        self.encoder = parts.EncoderPart(model).to(self.device, self.dtype).eval()
        self.decoder_step = parts.DecoderStep(model).to(self.device, self.dtype).eval()
        self.postnet_part = parts.PostnetPart(model).to(self.device, self.dtype).eval()
        self.vocoder_part = parts.VocoderPart(generator).to(self.device, self.dtype).eval()
        self.frame_channels = model.decoder.frame_channels
        self.frames_per_step = model.decoder.r
        self.hop = parts.vocoder_hop(generator)
        self._state: dict | None = None

    def _tensor(self, array: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(array)).to(self.device, self.dtype)

    def start(self, ids: np.ndarray) -> None:
        from voicebot.tts.tacotron_parts import initial_state

        with self.torch.inference_mode():
            ids_t = self.torch.from_numpy(ids.reshape(1, -1).astype(np.int64)).to(self.device)
            self._encoded, self._processed = self.encoder(ids_t)
            self._state = initial_state(self._encoded, self._model)

    def step(self, memory, prenet_masks):
        from voicebot.tts.tacotron_parts import STATE_NAMES

        with self.torch.inference_mode():
            outputs = self.decoder_step(
                self._tensor(memory.reshape(1, -1)), self._tensor(prenet_masks[0]),
                self._tensor(prenet_masks[1]), *(self._state[n] for n in STATE_NAMES),
                self._encoded, self._processed)
        frames, stop = outputs[0], outputs[1]
        self._state = dict(zip(STATE_NAMES, outputs[2:], strict=True))
        return frames.float().cpu().numpy().reshape(-1), float(stop.float().cpu())

    def postnet(self, mel: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.postnet_part(self._tensor(mel[None])).float().cpu().numpy()[0]

    def vocode(self, mel: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.vocoder_part(self._tensor(mel[None])).float().cpu().numpy()[0]


class TacotronVoice:
    """A Tacotron2 + HiFi-GAN voice; implements ``voicebot.tts.base.Synthesizer``.

    The backend holds one utterance's decoder state: one ``stream`` at a time per voice
    (the pipeline's single speech thread); Piper voices have no such limit.
    """

    def __init__(self, backend: Backend, tts_config, vocoder_config, *, voice_id: str,
                 tokenizer, max_decoder_steps: int | None = None,
                 stop_threshold: float = 0.5, prenet_dropout: bool | None = None,
                 seed: int = 0, parallel_vocoder: bool = False,
                 max_frames_per_id: float | None = MAX_FRAMES_PER_ID) -> None:
        from voicebot.tts.mel_v1 import renormalizer

        self.backend = backend
        self.voice_id = voice_id
        self.tokenizer = tokenizer
        self.tts_config, self.vocoder_config = tts_config, vocoder_config
        self._sample_rate = int(vocoder_config.audio["sample_rate"])
        if int(tts_config.audio["sample_rate"]) != self._sample_rate:
            raise ValueError("the Tacotron2 and HiFi-GAN sample rates differ "
                             f"({tts_config.audio['sample_rate']} vs {self._sample_rate})")
        self.max_decoder_steps = int(max_decoder_steps or tts_config.max_decoder_steps)
        self.stop_threshold = stop_threshold
        self.max_frames_per_id = max_frames_per_id  # None: only max_decoder_steps
        if prenet_dropout is None:  # Coqui's rule: dropout layers on, and kept at inference
            prenet_dropout = bool(tts_config.prenet_dropout
                                  and tts_config.prenet_dropout_at_inference)
        self.prenet_dropout = prenet_dropout
        # The decoder on its own thread while this one vocodes: on two free cores the
        # wall time is the larger of the two, not their sum (off in conversation, where
        # the chat model has the other core).
        self.parallel_vocoder = parallel_vocoder
        self._rng = np.random.default_rng(seed)
        # The Tacotron2's mel -> the vocoder's: nothing for a V1-mel voice with the V1
        # vocoder, the exact Coqui-dB -> V1 conversion for a downloaded Coqui voice, and
        # Coqui's own de-/re-normalisation between two Coqui models (see mel_v1).
        self._renormalize = renormalizer(tts_config.audio, vocoder_config.audio)
        self._edge_pad = int(getattr(vocoder_config, "generator_model_params", {})
                             .get("inference_padding", 5))

    @classmethod
    def from_checkpoints(cls, tts_checkpoint: Path, vocoder_checkpoint: Path, *,
                         engine: str = "onnx", voice_id: str | None = None,
                         device: str = "auto", threads: int = 1,
                         decoder_precision: str | None = None,
                         vocoder_precision: str | None = None, **options) -> TacotronVoice:
        """Load both checkpoints; ``threads`` sets onnxruntime's pool (torch's is global)."""
        from voicebot.tts.coqui_checkpoint import load_tacotron2
        from voicebot.tts.hifigan_v1 import load_vocoder

        model, tts_config = load_tacotron2(tts_checkpoint)
        generator, vocoder_config = load_vocoder(vocoder_checkpoint)
        if engine == "onnx":
            from voicebot.tts.tacotron_onnx import OnnxBackend

            backend = OnnxBackend.from_models(model, generator, tts_checkpoint,
                                              vocoder_checkpoint, model_id=voice_id,
                                              vocoder_config=vocoder_config,
                                              device=device, threads=threads,
                                              decoder_precision=decoder_precision,
                                              vocoder_precision=vocoder_precision)
        elif engine == "torch":
            backend = TorchBackend(model, generator, device=device)
        else:
            raise ValueError(f"unknown Tacotron2 engine {engine!r} (onnx or torch)")
        return cls(backend, tts_config, vocoder_config,
                   voice_id=voice_id or Path(tts_checkpoint).stem, tokenizer=model.tokenizer,
                   **options)

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(self.voice_id, self.voice_id, f"tacotron2-{self.backend.name}",
                          "en", self.sample_rate)]

    def text_ids(self, text: str) -> np.ndarray:
        return np.asarray(self.tokenizer.text_to_ids(text), dtype=np.int64)

    def _prenet_masks(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.prenet_dropout:
            return _ONES_256, _ONES_256
        draw = lambda: (self._rng.random((1, 256)) >= 0.5).astype(np.float32) * 2  # noqa: E731
        return draw(), draw()

    def stream_ids(self, ids: np.ndarray, cancel: CancelToken | None = None
                   ) -> Iterator[np.ndarray]:
        """Audio windows for one utterance's ids, as soon as each is ready."""
        for audio, _ in self._windows(ids, cancel):
            yield audio

    def _decoded(self, ids: np.ndarray, cancel: CancelToken | None) -> Iterator[np.ndarray]:
        """Decoder frames (channels, frames_per_step), step by step, until the stop token."""
        backend = self.backend
        backend.start(ids)
        channels, per_step = backend.frame_channels, backend.frames_per_step
        memory = np.zeros(channels, dtype=np.float32)
        cap = frame_cap(ids.size, self.max_frames_per_id)
        steps = self.max_decoder_steps
        if cap is not None:
            steps = min(steps, -(-cap // per_step))  # whole steps covering the cap
        for step in range(steps):
            if is_cancelled(cancel):
                return
            frames, stop_logit = backend.step(memory, self._prenet_masks())
            block = frames.reshape(per_step, channels)
            memory = block[-1]
            yield block.T
            # Coqui's rule: stop once the stop token passes the threshold after step 0.
            if 1.0 / (1.0 + np.exp(-stop_logit)) > self.stop_threshold and step > 0:
                return
        if steps < self.max_decoder_steps:
            log.info("Tacotron2 stop token did not fire: cut at %d steps (%d ids x %.1f "
                     "frames, %d at least)", steps, ids.size, self.max_frames_per_id,
                     MIN_CAP_FRAMES)
        else:
            log.info("Tacotron2 decoder stopped at max_decoder_steps=%d",
                     self.max_decoder_steps)

    def _windows(self, ids: np.ndarray, cancel: CancelToken | None
                 ) -> Iterator[tuple[np.ndarray, bool]]:
        """(audio, is_last) per window, each yielded the moment it is rendered."""
        backend = self.backend
        renderer = MelToAudio(backend.postnet, backend.vocode, hop=backend.hop,
                              renormalize=self._renormalize, edge_pad=self._edge_pad)
        decoded = self._decoded(ids, cancel)
        if self.parallel_vocoder:
            decoded = run_ahead(decoded)
        try:
            for block in decoded:
                for audio in renderer.push(block):
                    yield audio, False
        finally:
            decoded.close()  # stops the decoder thread when the caller stops early
        if is_cancelled(cancel):
            return
        for audio in renderer.finish():
            yield audio, renderer.done

    def stream(self, text: str, cancel: CancelToken | None = None, *,
               split_first: bool = True) -> Iterator[AudioChunk]:
        # The Tacotron2 voices made or downloaded here are English (characters or
        # English phonemes): other scripts are skipped, not spelled out.
        for piece in pieces(text, split_first=split_first, latin_only=True):
            if is_cancelled(cancel):
                return
            ids = self.text_ids(piece.text)
            if ids.size == 0:
                log.debug("nothing speakable in %r", piece.text)
                continue
            for audio, last in self._windows(ids, cancel):
                yield AudioChunk(audio, self.sample_rate, piece.text,
                                 last and piece.end_of_sentence)


_ONES_256 = np.ones((1, 256), dtype=np.float32)
_DONE = object()


def run_ahead(items: Iterator, depth: int = 64) -> Generator:
    """``items`` produced on a worker thread (up to ``depth`` ahead), consumed here.

    Errors raised by ``items`` are raised here; closing the returned generator stops the
    worker at its next item.
    """
    results: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                results.put(item)
        except BaseException as exc:  # handed to the consumer, raised there
            results.put(_Failure(exc))
        finally:
            results.put(_DONE)

    worker = threading.Thread(target=produce, name="tacotron-decoder", daemon=True)
    worker.start()
    try:
        while (item := results.get()) is not _DONE:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                results.get(timeout=0.05)
        worker.join()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error

