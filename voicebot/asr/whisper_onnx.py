"""Whisper on ONNX Runtime and numpy: the CPU recogniser without torch or transformers.

The same model, the same tricks and the same search as ``whisper_model.WhisperModel``
(encoder on the audio present plus the silent rest of the window as context, the
silence's cross-attention keys/values computed once, greedy and beam search over a
key/value cache, a forced prefix in one call), on the graphs ``whisper_onnx_export``
builds. Why: torch and transformers cost the conversation process ~680 MB of resident
memory just by being imported; ONNX Runtime is there anyway (chat model, voices, VAD).
``WhisperModel`` stays for CUDA and for training recognition adapters (a trained
adapter is merged and exported like the base model).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np

from voicebot.asr.whisper_onnx_export import (
    DECODER_FILE,
    ENCODER_FILE,
    LAYOUT_FILE,
    MEL_FILTERS_FILE,
)
from voicebot.asr.whisper_search import (
    CONTEXT_EXACT_FRAMES,
    HOP_LENGTH,
    N_FFT,
    SILENCE_LEVEL,
    DecodeResult,
    EncodedAudio,
    WhisperCommon,
    WhisperSpecials,
    beam_search,
    greedy_search,
    token_cap,
)
from voicebot.audio.resample import ASR_RATE
from voicebot.lm.tokenizer_file import FileTokenizer

log = logging.getLogger(__name__)


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Shapes change with every utterance and step; planned blocks per shape would pile up.
    options.enable_mem_pattern = False
    # A spinning pool steals the core another stage needs (ARCHITECTURE.md, threads).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options,
                                providers=["CPUExecutionProvider"])


class OnnxWhisperModel(WhisperCommon):
    """The exported Whisper plus the decoding loops. Thread-safe via a lock."""

    def __init__(self, export_dir: str | Path, cpu_threads: int = 1,
                 bucket_seconds: float = 0.5, context_pool: int = 16):
        self.model_dir = Path(export_dir)
        layout = json.loads((self.model_dir / LAYOUT_FILE).read_text("utf-8"))
        config = json.loads((self.model_dir / "config.json").read_text("utf-8"))
        generation = json.loads((self.model_dir / "generation_config.json").read_text("utf-8"))
        self.tokenizer = FileTokenizer(self.model_dir)
        self.device = "cpu"
        self.threads = max(1, int(cpu_threads or 1))
        self._encoder = _session(self.model_dir / ENCODER_FILE, self.threads)
        self._decoder = _session(self.model_dir / DECODER_FILE, self.threads)
        self.mel_filters = np.load(self.model_dir / MEL_FILTERS_FILE)
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(
            np.float32)  # periodic Hann, as torch.hann_window
        self.bucket_seconds = bucket_seconds
        self.pad_seconds = 0.0
        self.context_pool = context_pool
        self.encoder_layers = int(layout["encoder_layers"])
        self.decoder_layers = int(layout["decoder_layers"])
        self.heads = int(layout["heads"])
        self.head_dim = int(layout["d_model"]) // self.heads
        self.alignment_heads = [tuple(x) for x in layout["alignment_heads"]]
        self._lock = threading.Lock()
        self._silence_cross: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._silence_layers: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._silence_pooled: list[tuple[np.ndarray, np.ndarray]] = []
        self._pool_log_counts = np.zeros(0, np.float32)

        WhisperSpecials.from_configs(config, generation, self.tokenizer).apply_to(self)

    # ---------------------------------------------------------------- features, encoder
    def log_mel(self, audio: np.ndarray) -> np.ndarray:
        """Whisper's log-mel spectrogram (80 x frames) of audio padded to a bucket."""
        x = np.pad(self.padded(audio), N_FFT // 2, mode="reflect")  # torch.stft's center
        frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP_LENGTH]
        spectrum = np.fft.rfft(frames[:-1] * self.window, axis=-1)  # last frame dropped
        power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
        log_spec = np.log10(np.maximum(self.mel_filters @ power.T, 1e-10))
        log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
        return ((log_spec + 4.0) / 4.0).astype(np.float32)

    def _encoder_run(self, mel: np.ndarray, context, bias: np.ndarray) -> list[np.ndarray]:
        feeds = {"mel": mel[None], "context_bias": bias[None]}
        for i, (k, v) in enumerate(context):
            feeds[f"context_{i}_k"] = k
            feeds[f"context_{i}_v"] = v
        return self._encoder.run(None, feeds)

    def _empty_context(self) -> list[tuple[np.ndarray, np.ndarray]]:
        empty = np.zeros((1, self.heads, 0, self.head_dim), np.float32)
        return [(empty, empty)] * self.encoder_layers

    def _silence_ready(self) -> None:
        """Encode a 30 s window of padding once: its cross-attention keys/values (the
        decoder's view of the silent rest of the window) and each encoder layer's
        self-attention keys/values (the speech frames' context), pooled as in
        ``WhisperModel._context_for``."""
        if self._silence_cross is not None:
            return
        mel = np.full((self.mel_filters.shape[0], self.max_frames), SILENCE_LEVEL, np.float32)
        outputs = self._encoder_run(mel, self._empty_context(),
                                    np.zeros(self.max_frames // 2, np.float32))
        layers, cross = self._split_outputs(outputs)
        self._silence_layers = layers
        self._silence_cross = cross
        pool = max(1, self.context_pool)
        # As WhisperModel, the pooled context spans max_frames (3000) key positions, of
        # which the encoder's 1500 are real and the rest zero keys and values: an
        # attention sink of ~1500 silent positions that the measured WERs include
        # (ONNX with only the 1500 real positions: streaming committed "Howdy" where
        # this says "Had he", pocketsphinx 0920.wav).
        positions = self.max_frames
        groups = -(-positions // pool)
        padded = groups * pool
        counts = np.full(groups, float(pool), np.float32)
        counts[-1] -= padded - positions

        def pooled(x: np.ndarray) -> np.ndarray:
            x = np.pad(x, ((0, 0), (0, 0), (0, padded - x.shape[2]), (0, 0)))
            return x.reshape(*x.shape[:2], groups, pool, -1).sum(3) / counts[:, None]

        self._silence_pooled = [(pooled(k), pooled(v)) for k, v in layers]
        self._pool_log_counts = np.log(counts).astype(np.float32)

    def _split_outputs(self, outputs: list[np.ndarray]):
        layer_kv = outputs[1:1 + 2 * self.encoder_layers]
        cross = outputs[1 + 2 * self.encoder_layers:]
        return ([(layer_kv[2 * i], layer_kv[2 * i + 1]) for i in range(self.encoder_layers)],
                [(cross[2 * i], cross[2 * i + 1]) for i in range(self.decoder_layers)])

    def _context_for(self, n: int):
        """The silent window's keys/values after ``n`` speech positions, per encoder
        layer, and the attention bias over all keys (``WhisperModel._context_for``)."""
        pool = max(1, self.context_pool)
        exact_end = min(self.max_frames, -(-(n + CONTEXT_EXACT_FRAMES) // pool) * pool)
        first_group = -(-exact_end // pool)
        tails = [(np.concatenate([k[:, :, n:exact_end], kp[:, :, first_group:]], 2),
                  np.concatenate([v[:, :, n:exact_end], vp[:, :, first_group:]], 2))
                 for (k, v), (kp, vp) in zip(self._silence_layers, self._silence_pooled,
                                             strict=True)]
        # (Past 29 s of speech fewer than exact_end - n real silent positions are left.)
        exact = self._silence_layers[0][0][:, :, n:exact_end].shape[2]
        bias = np.concatenate([np.zeros(n + exact, np.float32),
                               self._pool_log_counts[first_group:]])
        return tails, bias

    def encode(self, audio: np.ndarray) -> EncodedAudio:
        """Encode audio once; ``decode`` can reuse the result."""
        with self._lock:
            self._silence_ready()
            mel = self.log_mel(audio)
            n = mel.shape[1] // 2
            context, bias = self._context_for(n)
            outputs = self._encoder_run(mel, context, bias)
            _, cross = self._split_outputs(outputs)
            full = [(np.concatenate([k, k_tail[:, :, n:]], axis=2),
                     np.concatenate([v, v_tail[:, :, n:]], axis=2))
                    for (k, v), (k_tail, v_tail) in zip(cross, self._silence_cross,
                                                        strict=True)]
        return EncodedAudio(outputs[0], full, len(audio))

    # ---------------------------------------------------------------- decoder
    def _step_fn(self, encoded: EncodedAudio):
        """A decoder step over a growing cache: ``step(ids, origins)`` -> log-probs
        [B, L, vocab]; ``origins`` reorders the cache to the surviving beams first."""
        empty = np.zeros((1, self.heads, 0, self.head_dim), np.float32)
        cache = [empty] * (2 * self.decoder_layers)
        cross = {}
        for i, (k, v) in enumerate(encoded.cross_kv):
            cross[f"cross_{i}_k"] = k
            cross[f"cross_{i}_v"] = v

        def step(ids: list[list[int]], origins: list[int] | None = None) -> np.ndarray:
            nonlocal cache
            if origins is not None:
                index = np.asarray(origins)
                cache = [c[index] for c in cache]
            feeds = dict(cross)
            feeds["input_ids"] = np.asarray(ids, np.int64)
            feeds["past_length"] = np.array(cache[0].shape[2], np.int64)
            for i in range(self.decoder_layers):
                feeds[f"past_{i}_k"] = cache[2 * i]
                feeds[f"past_{i}_v"] = cache[2 * i + 1]
            outputs = self._decoder.run(None, feeds)
            cache = outputs[1:1 + 2 * self.decoder_layers]
            return outputs[0]

        return step

    def decode(self, audio: np.ndarray, prefix: list[int] | None = None, beam_size: int = 1,
               nbest: int = 1, language: str = "en",
               steps_after_first_end: int | None = None,
               encoded: EncodedAudio | None = None) -> DecodeResult:
        """Transcribe up to 30 s of audio (see ``WhisperModel.decode``)."""
        prefix = list(prefix or [])
        encoded = encoded or self.encode(audio)
        with self._lock:
            prompt = self.prompt(language)
            cap = token_cap(min(len(audio), encoded.n_samples), len(prompt) + len(prefix),
                            self.max_target)
            step = self._step_fn(encoded)
            first = step([prompt + prefix], None)
            if beam_size <= 1:
                return greedy_search(step, first, self.search, self.no_speech, prompt,
                                     prefix, cap)
            return beam_search(step, first, self.search, self.no_speech, prompt, prefix,
                               cap, beam_size, max(1, nbest), steps_after_first_end)

    def alignment_weights(self, encoded: EncodedAudio, tokens: list[int],
                          prompt: list[int]) -> np.ndarray:
        """Alignment heads' cross-attention (heads x tokens x speech frames) over
        prompt + tokens + end-of-text (see ``whisper_timing``)."""
        if not self.alignment_heads:
            return np.zeros((0, 0, 0))
        with self._lock:
            feeds = {f"cross_{i}_{kind}": kv[j] for i, kv in enumerate(encoded.cross_kv)
                     for j, kind in enumerate(("k", "v"))}
            empty = np.zeros((1, self.heads, 0, self.head_dim), np.float32)
            for i in range(self.decoder_layers):
                feeds[f"past_{i}_k"] = feeds[f"past_{i}_v"] = empty
            feeds["input_ids"] = np.asarray([prompt + tokens + [self.eot]], np.int64)
            feeds["past_length"] = np.array(0, np.int64)
            wanted = sorted({f"cross_probs_{layer}" for layer, _ in self.alignment_heads})
            probs = dict(zip(wanted, self._decoder.run(wanted, feeds), strict=True))
        frames = encoded.speech.shape[1]
        return np.stack([probs[f"cross_probs_{layer}"][0, head, :, :frames]
                         for layer, head in self.alignment_heads])

    def warm_up(self) -> None:
        """Compute the silence encoding and run one decode so the first utterance is fast."""
        with self._lock:
            self._silence_ready()
        self.decode(np.zeros(ASR_RATE // 2, dtype=np.float32))
