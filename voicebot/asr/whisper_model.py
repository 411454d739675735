"""Whisper inference on a transformers ``WhisperForConditionalGeneration``.

What makes it fast enough for push-to-talk on a small CPU:
- The encoder runs on the audio actually present (rounded up to ``bucket_seconds``, so
  few distinct shapes occur), not on Whisper's fixed 30 s window: 3 s of speech costs a
  tenth of 30 s. The rest of the window is the encoding of silence, computed once
  (see ``_silence_tail`` for why it must be there), with its cross-attention keys and
  values also computed once.
- On CPU, int8 weights for the linear layers (``cpu_int8``), fp16 on CUDA.
- Our own greedy and beam-search loops over the decoder with a key/value cache, instead
  of ``generate()``, whose per-step overhead dominated for this tiny decoder (5-beam
  ``generate`` measured rtf 1.2 here). They return per-hypothesis log-probabilities.
- A forced prefix (the words already committed while streaming) is fed in one decoder
  call, so only the uncommitted tail is decoded token by token.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import torch

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

log = logging.getLogger(__name__)


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


class HalfEmbedding(torch.nn.Module):
    """An embedding stored in float16 whose lookups come out in float32."""

    def __init__(self, embedding: torch.nn.Embedding):
        super().__init__()
        self.register_buffer("weight", embedding.weight.detach().to(torch.float16))
        self.padding_idx = embedding.padding_idx

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.embedding(ids, self.weight).float()


def _heads(layer, x: torch.Tensor, projection) -> torch.Tensor:
    attn = layer.self_attn
    return projection(x).view(x.shape[0], x.shape[1], attn.num_heads, -1).transpose(1, 2)


def _self_attention_kv(layer, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An encoder layer's self-attention keys and values for its input ``h``."""
    x = layer.self_attn_layer_norm(h)
    return (_heads(layer, x, layer.self_attn.k_proj).contiguous(),
            _heads(layer, x, layer.self_attn.v_proj).contiguous())


def _layer_with_context(layer, h: torch.Tensor, k_more: torch.Tensor, v_more: torch.Tensor,
                        bias: torch.Tensor | None = None) -> torch.Tensor:
    """A Whisper encoder layer whose self-attention also sees extra keys and values.

    The same computation as ``WhisperEncoderLayer.forward`` (pre-norm attention, then
    pre-norm GELU feed-forward, both residual), with ``k_more``/``v_more`` (batch x heads
    x positions x head_dim) appended to the keys and values of ``h`` itself; ``bias``
    (1 x all keys) is added to the attention logits.
    """
    attn = layer.self_attn
    x = layer.self_attn_layer_norm(h)
    q = _heads(layer, x, attn.q_proj) * attn.scaling
    k = torch.cat([_heads(layer, x, attn.k_proj), k_more.expand(h.shape[0], -1, -1, -1)], 2)
    v = torch.cat([_heads(layer, x, attn.v_proj), v_more.expand(h.shape[0], -1, -1, -1)], 2)
    mixed = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                                             scale=1.0)
    h = h + attn.out_proj(mixed.transpose(1, 2).reshape(h.shape))
    x = layer.final_layer_norm(h)
    return h + layer.fc2(layer.activation_fn(layer.fc1(x)))


class WhisperModel(WhisperCommon):
    """A loaded Whisper checkpoint plus the decoding loops. Thread-safe via a lock."""

    def __init__(self, model_dir: str | Path, device: str = "auto", cpu_threads: int = 1,
                 pad_seconds: float = 0.0, bucket_seconds: float = 0.5,
                 cpu_int8: str = "all", encoder_context: bool = True,
                 context_pool: int = 16):
        from transformers import (
            WhisperFeatureExtractor,
            WhisperForConditionalGeneration,
            WhisperTokenizerFast,
        )

        self.model_dir = Path(model_dir)
        self.device = pick_device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        if self.device.type == "cpu" and cpu_threads:
            # One thread per stage: on 2 cores a 2-thread run collapses when another
            # stage is busy (ARCHITECTURE.md, CPU thread budget). set_num_threads is
            # process-wide, so it is only applied when asked for.
            torch.set_num_threads(cpu_threads)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a progress bar per load is noise in a CLI/log
        # Tokenizer first: its loading temporaries then come and go before the weights'
        # (the process's peak RSS counts the highest moment of loading).
        self.tokenizer = WhisperTokenizerFast.from_pretrained(self.model_dir)
        feature_extractor = WhisperFeatureExtractor.from_pretrained(self.model_dir)
        self.mel_filters = torch.tensor(feature_extractor.mel_filters.T, dtype=torch.float32,
                                        device=self.device)
        del feature_extractor
        self.model = WhisperForConditionalGeneration.from_pretrained(
            self.model_dir, dtype=self.dtype).to(self.device).eval()
        if self.device.type == "cpu" and cpu_int8 != "none":
            self._quantize(cpu_int8)
        self.window = torch.hann_window(N_FFT, device=self.device)
        self.pad_seconds = pad_seconds
        # False: the speech frames attend only to each other (the encoder before
        # 2026-12-06, kept for comparisons; see _silence_tail).
        self.encoder_context = encoder_context
        self.context_pool = context_pool  # 1: every silent position as it is
        self._silence_pooled: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._pool_log_counts: torch.Tensor | None = None
        self.bucket_seconds = bucket_seconds
        self._lock = threading.Lock()
        self._silence: torch.Tensor | None = None
        self._silence_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._silence_layers: list[tuple[torch.Tensor, torch.Tensor]] | None = None

        WhisperSpecials.from_configs(self.model.config.to_dict(),
                                     self.model.generation_config.to_dict(),
                                     self.tokenizer).apply_to(self)

    def _quantize(self, which: str) -> None:
        """Int8 weights (dynamic quantisation) for the linear layers on CPU.

        Each decoded token multiplies by the 51864 x 384 output projection: 80 MB of
        float32 read per step, most of a decode's time here (15 ms/step for one beam,
        20 ms for five). Int8 weights make it ~4x cheaper, and the encoder ~25% cheaper
        (CPU time for 3 s: 50 -> 38 ms). WER on the pocketsphinx set stayed within one
        word of float32 (greedy and 5-beam). ``which``: "decoder" (decoder layers and
        output projection), "all" (the encoder too) or "none".
        """
        import warnings

        from torch.ao.quantization import quantize_dynamic

        if which not in ("decoder", "all"):
            raise ValueError(f"cpu_int8 must be none, decoder or all, not {which!r}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.ao, fine on 2.8
            # In place: by default quantize_dynamic deep-copies the module first, and the
            # copy of the output projection (tied to the 76 MB token embedding, which
            # the copy duplicates) raised the load's peak RSS by ~65 MB.
            if which == "all":
                quantize_dynamic(self.model.model.encoder, {torch.nn.Linear},
                                 dtype=torch.qint8, inplace=True)
            quantize_dynamic(self.model.model.decoder.layers, {torch.nn.Linear},
                             dtype=torch.qint8, inplace=True)
            holder = torch.nn.Sequential(self.model.proj_out)
            quantize_dynamic(holder, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
            self.model.proj_out = holder[0]
        # The output projection has its own int8 copy now; the token embedding it was
        # tied to is only looked up, a few rows per step. Keep it in float16 (38 MB
        # less), which loses nothing: the converted weights are float16 to begin with.
        decoder = self.model.model.decoder
        decoder.embed_tokens = HalfEmbedding(decoder.embed_tokens)

    # ---------------------------------------------------------------- features, encoder
    def log_mel(self, audio: np.ndarray) -> torch.Tensor:
        """Whisper's log-mel spectrogram (80 x frames) of audio padded to a bucket."""
        padded = self.padded(audio)
        x = torch.from_numpy(padded).to(self.device)
        stft = torch.stft(x, N_FFT, HOP_LENGTH, window=self.window, return_complex=True)
        power = stft[..., :-1].abs() ** 2
        mel = self.mel_filters @ power
        log_spec = torch.clamp(mel, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        return (log_spec + 4.0) / 4.0

    def _run_encoder(self, mel: torch.Tensor, context: bool = True) -> torch.Tensor:
        """The encoder's layers on any number of frames (transformers insists on 3000).

        With ``context`` the speech frames attend, in every layer, to the keys and values
        of the silent rest of the 30 s window as well (``_silence_context``), as they do
        when Whisper encodes the whole window; see ``_silence_tail`` for why it matters.
        """
        enc = self.model.model.encoder
        with torch.inference_mode():
            h = torch.nn.functional.gelu(enc.conv1(mel[None].to(self.dtype)))
            h = torch.nn.functional.gelu(enc.conv2(h)).permute(0, 2, 1)
            n = h.shape[1]
            h = h + enc.embed_positions.weight[:n]
            tails, bias = (self._context_for(n)
                           if context and self.encoder_context and n < self.max_frames
                           else (None, None))
            for index, layer in enumerate(enc.layers):
                if tails is None:
                    out = layer(h, None)
                    h = out[0] if isinstance(out, tuple) else out
                else:
                    h = _layer_with_context(layer, h, *tails[index], bias)
            return enc.layer_norm(h)

    def _silence_tail(self) -> torch.Tensor:
        """Encoder output of a 30 s window of padding, computed once.

        Encoding only the speech plus a little padding made tiny.en loop ("10 of clubs
        10 of clubs ...": WER 0.99 with 1 s of padding, 0.30 with 8 s, on the
        pocketsphinx set). Whisper's decoder expects to see the silent rest of its 30 s
        window, so the encoding of silence computed on its own is appended after the
        speech's. The encoder's self-attention needs it too: speech frames that attend
        only to each other (as before 2026-12-06) gave short clips repeated words ("then
        leisure" -> "Then, lee shirt, lee shirt, lee shirt."; "five five" -> "5 5 5"):
        on 1-3 word clips cut from the pocketsphinx recordings plus the recordings
        themselves (128 words), fp32 greedy WER 0.273 vs 0.172 for the whole 30 s
        window. Letting them attend to the silence's keys and values as well
        (``_silence_context``) gave 0.203 (0.188 with the int8 weights). The padding's
        log-mel level varies a little with loudness (it is the utterance maximum - 8);
        one typical level gave identical results across -0.5..-1.0 there.
        """
        if self._silence is None:
            self._silence_layers = None
            mel = torch.full((self.mel_filters.shape[0], self.max_frames), SILENCE_LEVEL,
                             device=self.device)
            self._silence = self._run_encoder(mel, context=False)
        return self._silence

    def _silence_context(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per encoder layer, the self-attention keys and values of the silent window.

        Computed once with the silence encoding (and again whenever ``_silence`` is
        cleared, e.g. after the encoder's weights changed): 4 layers x 2 x 1500 x 384
        floats, 18 MB in float32 for tiny.
        """
        if self._silence is None or self._silence_layers is None:
            self._silence_tail()
            enc = self.model.model.encoder
            with torch.inference_mode():
                mel = torch.full((self.mel_filters.shape[0], self.max_frames), SILENCE_LEVEL,
                                 device=self.device)
                h = torch.nn.functional.gelu(enc.conv1(mel[None].to(self.dtype)))
                h = torch.nn.functional.gelu(enc.conv2(h)).permute(0, 2, 1)
                h = h + enc.embed_positions.weight[: h.shape[1]]
                layers = []
                for layer in enc.layers:
                    layers.append(_self_attention_kv(layer, h))
                    out = layer(h, None)
                    h = out[0] if isinstance(out, tuple) else out
            self._silence_layers = layers
            pool = max(1, self.context_pool)
            groups = -(-self.max_frames // pool)
            padded = groups * pool

            def pooled(x: torch.Tensor) -> torch.Tensor:
                x = torch.nn.functional.pad(x, (0, 0, 0, padded - x.shape[2]))
                return x.view(*x.shape[:2], groups, pool, -1).sum(3)

            counts = torch.full((groups,), float(pool), device=self.device)
            counts[-1] -= padded - self.max_frames
            self._silence_pooled = [(pooled(k) / counts[:, None], pooled(v) / counts[:, None])
                                    for k, v in layers]
            self._pool_log_counts = counts.log().to(self.dtype)
        return self._silence_layers

    def _context_for(self, n: int):
        """The silent window's keys/values after ``n`` speech frames, per encoder layer,
        and the attention bias that goes with them (None when nothing is pooled).

        The first ``CONTEXT_EXACT_FRAMES`` silent positions after the speech are used
        as they are; further ones in groups of ``context_pool``, each group's mean key
        and value standing for all of its members (bias + log(group size)): silence
        keys change little from one position to the next, and 1500 keys per speech
        frame doubled the encoder's time (3 s: 33 -> 63 ms, one thread).
        """
        layers = self._silence_context()
        pool = max(1, self.context_pool)
        if pool == 1:
            return [(k[:, :, n:], v[:, :, n:]) for k, v in layers], None
        exact_end = min(self.max_frames, -(-(n + CONTEXT_EXACT_FRAMES) // pool) * pool)
        first_group = -(-exact_end // pool)  # (1500 is not a multiple of every pool)
        tails = [(torch.cat([k[:, :, n:exact_end], kp[:, :, first_group:]], 2),
                  torch.cat([v[:, :, n:exact_end], vp[:, :, first_group:]], 2))
                 for (k, v), (kp, vp) in zip(layers, self._silence_pooled, strict=True)]
        bias = torch.cat([torch.zeros(exact_end, device=self.device, dtype=self.dtype),
                          self._pool_log_counts[first_group:]])
        return tails, bias[None]

    def _cross_kv(self, states: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each decoder layer's cross-attention keys and values for encoder states."""
        heads = self.model.config.decoder_attention_heads
        result = []
        for layer in self.model.model.decoder.layers:
            attn = layer.encoder_attn
            shape = (states.shape[0], states.shape[1], heads, -1)
            k = attn.k_proj(states).view(shape).transpose(1, 2).contiguous()
            v = attn.v_proj(states).view(shape).transpose(1, 2).contiguous()
            result.append((k, v))
        return result

    def encode(self, audio: np.ndarray) -> EncodedAudio:
        """Encode audio once; ``decode`` can reuse the result (see ``EncodedAudio``).

        Projecting all 1500 positions to cross-attention keys and values in every decoder
        layer is 1.8 G multiply-adds, more than encoding 3 s of speech (~1.1 G), so the
        silent tail's projections are computed once and only the speech part is
        projected per call.
        """
        with self._lock, torch.inference_mode():
            speech = self._run_encoder(self.log_mel(audio))
            if self._silence_kv is None:
                self._silence_kv = self._cross_kv(self._silence_tail())
            n = speech.shape[1]
            cross = [(torch.cat([k, k_tail[:, :, n:]], dim=2),
                      torch.cat([v, v_tail[:, :, n:]], dim=2))
                     for (k, v), (k_tail, v_tail) in zip(
                         self._cross_kv(speech), self._silence_kv, strict=True)]
        return EncodedAudio(speech, cross, len(audio))

    def _cache_for(self, encoded: EncodedAudio):
        """A fresh decoder cache whose cross-attention part is the encoded audio."""
        cache = self._new_cache()
        for index, (k, v) in enumerate(encoded.cross_kv):
            cache.cross_attention_cache.update(k, v, index)
            cache.is_updated[index] = True
        return cache

    @staticmethod
    def _share_cross_attention(cache, batch: int) -> None:
        """Give every beam the same cross-attention keys/values without copying them.

        transformers' beam helpers copy (and on every step re-gather) the cross-attention
        cache per beam: 5 beams x 1500 positions x 4 layers is ~90 MB of copying per
        token, which made 5-beam decoding 6x slower than greedy. All beams attend to the
        same audio, so a broadcast view of the single copy is enough.
        """
        for layer in cache.cross_attention_cache.layers:
            layer.keys = layer.keys[:1].expand(batch, -1, -1, -1)
            layer.values = layer.values[:1].expand(batch, -1, -1, -1)

    # ---------------------------------------------------------------- decoder
    def _new_cache(self):
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        config = self.model.config
        return EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))

    def _step(self, tokens: torch.Tensor, encoded: torch.Tensor, cache) -> torch.Tensor:
        """Log-probabilities (float32) of the next token at every position of ``tokens``."""
        past = cache.get_seq_length()
        positions = torch.arange(past, past + tokens.shape[1], device=self.device)
        out = self.model.model.decoder(
            input_ids=tokens, encoder_hidden_states=encoded, past_key_values=cache,
            position_ids=positions[None].expand(tokens.shape[0], -1), use_cache=True)
        logits = self.model.proj_out(out.last_hidden_state).float()
        return torch.log_softmax(logits, dim=-1)

    def decode(self, audio: np.ndarray, prefix: list[int] | None = None, beam_size: int = 1,
               nbest: int = 1, language: str = "en",
               steps_after_first_end: int | None = None,
               encoded: EncodedAudio | None = None) -> DecodeResult:
        """Transcribe up to 30 s of audio. ``prefix``: text tokens forced at the start.

        Greedy or beam search (``whisper_search``): beam search stops when ``beam_size``
        hypotheses have ended (Whisper's rule) or, if ``steps_after_first_end`` is set,
        that many steps after the first one ended once every live beam scores below the
        best ended one: each step costs ~12-17 ms here (reading the decoder's weights
        dominates), and the alternatives that end late are long shots anyway.
        ``encoded``: reuse an earlier ``encode`` of (a prefix of) this audio instead of
        encoding ``audio``.
        """
        prefix = list(prefix or [])
        encoded = encoded or self.encode(audio)
        with self._lock, torch.inference_mode():
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

    def _step_fn(self, encoded: EncodedAudio):
        """``step(ids, origins)`` for ``whisper_search``: the decoder on a key/value cache
        that is reordered to ``origins`` (the surviving beams) first; log-probabilities
        [beams, len(ids[0]), vocab] as float32 numpy."""
        cache = self._cache_for(encoded)
        states = encoded.speech
        expanded = states

        def step(ids: list[list[int]], origins: list[int] | None) -> np.ndarray:
            nonlocal expanded
            if origins is not None:
                # Only the decoder's own keys/values differ between beams.
                cache.self_attention_cache.reorder_cache(
                    torch.tensor(origins, device=self.device))
                if expanded.shape[0] != len(origins):
                    expanded = states.expand(len(origins), -1, -1)
                    self._share_cross_attention(cache, len(origins))
            tokens = torch.tensor(ids, device=self.device)
            return self._step(tokens, expanded, cache).cpu().numpy()

        return step

    def warm_up(self) -> None:
        """Compute the silence encoding and run one decode so the first utterance is fast."""
        with self._lock:
            self._silence_tail()
        self.decode(np.zeros(ASR_RATE // 2, dtype=np.float32))
