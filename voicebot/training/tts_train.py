"""Fine-tune (or train) Coqui's Tacotron2 on an LJSpeech-layout folder: a plain torch loop.

Run as its own process (``voicebot train tts ...``; the Training tab starts exactly that)
and reports through ``voicebot.training.progress`` JSON lines on stdout; logs go to
stderr. Coqui's model supplies ``train_step`` and its loss (``TacotronLoss``); the loop
around them is ours, so checkpointing, cancelling and resuming are simple and exact:

- Training state (weights, optimizer, scheduler, AMP scaler, step, epoch, config) goes to
  ``<out>/checkpoint_<step>.pth`` (atomic rename, the last two kept); the inference voice
  (weights + config) to ``<out>/model_file.pth`` + ``config.json``, which
  ``voicebot.tts.voices.load_voice(<out>)`` loads. Everything loads with
  ``torch.load(weights_only=True)``.
- SIGTERM / SIGINT finish the current step, save a checkpoint, emit ``cancelled`` and
  exit 0. kill -9 loses the steps since the last checkpoint; ``--resume`` continues from
  the newest readable checkpoint with the same step count. Recordings are only read.
- CUDA: autocast (bf16 where supported, else fp16 with a GradScaler). Several GPUs: start
  with ``torchrun --nproc_per_node N -m voicebot train tts ...``; each rank trains on its
  share of every batch order under DistributedDataParallel and rank 0 writes.
- The base to fine-tune from, in this order: ``--base``; the installed Coqui
  ``coqui-tacotron2-ddc-ljspeech`` (it keeps its own mel kind); the cached Piper-taught
  base (``voicebot.training.base_voice``); else that base is built first, in this
  process (``--base-minutes`` / ``--base-steps`` make it smaller). ``--scratch`` uses
  none of them.
- Voices trained here predict the V1 mel (``voicebot.tts.mel_v1``) that the embedded
  HiFi-GAN V1 was trained on; a Coqui base keeps its own normalized dB mel.
- Every 10th take of metadata.csv is held out (``voicebot.training.heldout``), never
  trained on, and listed in ``<out>/heldout.json``.
- Reduced models (``voicebot.training.tacotron_size``) keep their small weights in the
  training checkpoints; ``model_file.pth`` holds them zero-padded to Coqui's widths so
  Coqui's ``setup_model`` loads the voice as it is (plus ``sizes`` for a loader that
  wants the small model back).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voicebot.atomic_write import write_json_atomic
from voicebot.training import progress, run_folder
from voicebot.training.alignment import batch_score
from voicebot.training.attention_targets import (
    guided_attention_loss,
    path_error,
    step_centres,
)
from voicebot.training.run_folder import (  # shared with the asr trainer
    RunLock,
    StopFlag,
    checkpoint_files,
    prune_checkpoints,
    remove_stale_temps,
    save_atomic,
)
from voicebot.training.tacotron_size import Sizes

log = logging.getLogger(__name__)

PREVIEW_TEXT = "Hello, this is my own voice speaking from a new checkpoint."
MODEL_FILE = "model_file.pth"
KEEP_CHECKPOINTS = 2
DEFAULT_FINE_TUNE_STEPS = 3000
DEFAULT_SCRATCH_STEPS = 100_000
FINE_TUNE_LR = 5e-5  # from Coqui's LJSpeech model (trained to its end at ~1e-4)
# From the Piper-taught base, whose Noam schedule ends its short run near 2e-4: half of
# that keeps adapting without unlearning the alignment.
PIPER_BASE_FINE_TUNE_LR = 1e-4
BASE_ID = "coqui-tacotron2-ddc-ljspeech"
VOCODER_ID = "coqui-hifigan-v2-ljspeech"


class TrainingError(RuntimeError):
    """Bad input to a training run (no data, unreadable base checkpoint, ...)."""


@dataclass
class TrainOptions:
    data: Path | None  # LJSpeech folder; None when ``items`` are given
    out: Path
    resume: bool = False
    base: Path | None = None  # a Tacotron2 checkpoint; None = the installed catalog model
    scratch: bool = False  # do not look for an installed base model
    max_steps: int | None = None
    batch_size: int = 16
    lr: float | None = None
    checkpoint_every: int = 200
    log_every: int = 1
    preview: bool = True
    preview_text: str = PREVIEW_TEXT
    vocoder: Path | None = None  # HiFi-GAN checkpoint for previews; else the catalog one
    device: str = "auto"
    r: int | None = None  # decoder frames per step when training from scratch
    seed: int = 0
    threads: int | None = None
    # --- set by the base-voice build (voicebot.training.base_voice) ---
    items: list | None = None  # ready Items instead of ``data``
    new_config: object | None = None  # a Coqui config to train from random weights
    sizes: Sizes | None = None  # widths of a model built from ``new_config``
    phase: str | None = None  # "base" / "fine-tune": added to every event
    then_steps: int = 0  # steps of a phase that follows (for total_eta_s)
    heldout: bool = True  # hold out every 10th take of ``data``
    # guide the attention along the items' teacher paths (base_voice.BaseRecipe)
    attention_path: bool = False
    # --- the Piper-taught base, when it has to be built first ---
    base_minutes: float | None = None
    base_steps: int | None = None
    # --- self-scoring on the held-out takes (voicebot.training.run_scoring) ---
    score: bool = True  # score at the end (and every ``score_every`` steps); keep the best
    score_every: int = 0  # 0: only the final voice is scored


# ----- distributed ------------------------------------------------------------------
@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> Dist:
    """Join the process group torchrun set up (WORLD_SIZE > 1), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


# ----- data -------------------------------------------------------------------------
@dataclass
class Item:
    id: str
    ids: np.ndarray  # token ids
    mel: np.ndarray  # (frames, mels), normalized as the model expects
    # (frames,) token position of each frame, where a teacher said it (attention_targets)
    positions: np.ndarray | None = None


def mel_function(config, audio_processor):
    """audio -> (frames, mels) in the mel kind the model predicts: the V1 mel for voices
    made here, Coqui's own (normalized dB) for a Coqui base."""
    from voicebot.tts.mel_v1 import is_v1_audio, mel_v1

    if is_v1_audio(config.audio):
        return lambda audio: mel_v1(audio).T.copy()
    return lambda audio: audio_processor.melspectrogram(audio).astype(np.float32).T


def load_items(data: Path, model, mel_of, sample_rate: int, heldout: bool = True
               ) -> tuple[list[Item], list[str]]:
    """(training items, held-out take ids) of an LJSpeech folder."""
    from concurrent.futures import ThreadPoolExecutor

    from voicebot.audio.wav_io import AudioFileError, read_wav
    from voicebot.text.spoken import normalize
    from voicebot.training.dataset import read_metadata
    from voicebot.training.heldout import split_heldout

    metadata = Path(data) / "metadata.csv"
    if not metadata.is_file():
        raise TrainingError(f"{data} has no metadata.csv (LJSpeech layout expected)")
    rows = list(read_metadata(metadata))
    train_rows, held_rows = split_heldout(rows) if heldout else (rows, [])
    # The text front end first, as TacotronVoice does at inference ("$5" -> words);
    # Coqui's espeak phonemizer is a subprocess per call (~0.1 s), so a few overlap.
    with ThreadPoolExecutor(4) as pool:
        ids_of = dict(zip((r[0] for r in train_rows), pool.map(
            lambda row: model.tokenizer.text_to_ids(normalize(row[1])), train_rows),
            strict=True))
    items = []
    for take_id, _text in train_rows:
        wav = Path(data) / "wavs" / f"{take_id}.wav"
        if "/" in take_id or "\\" in take_id or not wav.is_file():
            log.warning("skipping %s: no wavs/%s.wav", take_id, take_id)
            continue
        try:
            audio = read_wav(wav, sample_rate=sample_rate).samples
        except AudioFileError as exc:
            log.warning("skipping %s: %s", take_id, exc)
            continue
        ids = np.asarray(ids_of[take_id], dtype=np.int64)
        if ids.size == 0:
            log.warning("skipping %s: nothing speakable in %r", take_id, _text)
            continue
        items.append(Item(take_id, ids, mel_of(audio)))
    if not items:
        raise TrainingError(f"no usable recordings listed in {metadata}")
    return items, [row[0] for row in held_rows]


# A step pads its batch to the longest item. Random batches of 24 teacher sentences
# (mean 276 frames) were padded to ~630: on this 2-core CPU most of a step was padding.
# So batches are cut from length-sorted pools of this many batches ...
BUCKET_POOL_BATCHES = 32
# ... sorted by length times a random factor exp(U(-j, j)) drawn afresh each epoch, so the
# batches are not the same neighbours every epoch. Simulated on 828 teacher-like lengths,
# batch 24: j=0 gives padding efficiency 0.95 but 64% of the pairs that share a batch
# share it again next epoch; j=0.2: efficiency 0.83, 10% (random batches: 0.48, 3%).
BUCKET_JITTER = 0.2
# Below this many batches a set is plain-shuffled: its pools are too small for batches
# that differ between epochs (a 36-sentence set sorted into batches of 16 repeats the
# same three batches), and its epochs are short anyway.
BUCKET_MIN_BATCHES = 8


def epoch_order(lengths: list[int], batch: int, epoch: int, seed: int) -> list[int]:
    """A reproducible order per epoch (a resumed run sees the same batches) whose
    consecutive runs of ``batch`` items have similar lengths.

    The items are shuffled, cut into pools of ``BUCKET_POOL_BATCHES`` batches, each pool
    sorted by its jittered lengths and cut into batches, and the batches shuffled; the one
    short batch (if the count is not a multiple of ``batch``) comes last, so every other
    batch starts at a multiple of ``batch`` as the training loop reads them.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if batch <= 1 or len(order) < batch * BUCKET_MIN_BATCHES:
        return order
    key = {i: lengths[i] * math.exp(rng.uniform(-BUCKET_JITTER, BUCKET_JITTER))
           for i in order}
    pool = batch * BUCKET_POOL_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        part = sorted(order[start:start + pool], key=key.__getitem__)
        batches += [part[k:k + batch] for k in range(0, len(part), batch)]
    short = [b for b in batches if len(b) < batch]
    full = [b for b in batches if len(b) == batch]
    rng.shuffle(full)
    return [i for b in full + short for i in b]


def make_batch(items: list[Item], r: int, torch, device):
    """The dict Coqui's Tacotron2.train_step expects, padded as its dataset pads."""
    items = sorted(items, key=lambda it: len(it.ids), reverse=True)
    batch = len(items)
    text_len = max(len(it.ids) for it in items)
    frames = max(len(it.mel) for it in items)
    frames += (-frames) % r  # the decoder emits r frames per step
    channels = items[0].mel.shape[1]
    text = np.zeros((batch, text_len), np.int64)
    mel = np.zeros((batch, frames, channels), np.float32)
    # Stop targets per decoder step: 0 while speaking, 1 from the last real step on.
    stop = np.ones((batch, frames // r), np.float32)
    for i, it in enumerate(items):
        text[i, :len(it.ids)] = it.ids
        mel[i, :len(it.mel)] = it.mel
        stop[i, :math.ceil(len(it.mel) / r) - 1] = 0.0
    mel_lengths = torch.tensor([len(it.mel) for it in items])
    centres = np.full((batch, frames // r), np.nan, np.float32)
    for i, it in enumerate(items):
        if it.positions is not None and len(it.positions):
            centres[i] = step_centres(it.positions, r, frames // r)
    return {
        # where each decoder step's attention belongs (NaN: unknown), for the
        # duration-guided attention loss; Coqui's train_step ignores the key
        "attention_centres": torch.from_numpy(centres).to(device),
        "text_input": torch.from_numpy(text).to(device),
        "text_lengths": torch.tensor([len(it.ids) for it in items]).to(device),
        "mel_input": torch.from_numpy(mel).to(device),
        "mel_lengths": mel_lengths.to(device),
        "stop_targets": torch.from_numpy(stop).to(device),
        "stop_target_lengths": torch.ceil(mel_lengths / r).to(device),
        "speaker_ids": None, "d_vectors": None,
    }


# ----- checkpoints ------------------------------------------------------------------
def latest_checkpoint(out: Path):
    """(path, state) of the newest checkpoint of a Tacotron2 run that reads, or (None, None)."""
    return run_folder.latest_checkpoint(
        out, accept=lambda state: isinstance(state, dict) and "model" in state
        and "step" in state)


def save_training_state(out: Path, model, config, optimizer, scheduler, scaler, step: int,
                        epoch: int, position: int = 0, sizes: Sizes | None = None
                        ) -> tuple[Path, Path]:
    """Write the resumable checkpoint and the inference voice; returns both paths."""
    out.mkdir(parents=True, exist_ok=True)
    sizes = sizes or Sizes()
    config_dict = config.to_dict()
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    state = {"model": weights, "config": config_dict, "step": step, "epoch": epoch,
             "position": position, "r": model.decoder.r, "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict() if scheduler is not None else None,
             "scaler": scaler.state_dict() if scaler is not None else None,
             "sizes": sizes.to_dict(), "format": "voicebot-tacotron2-train-1"}
    path = out / f"checkpoint_{step}.pth"
    save_atomic(state, path)
    voice = out / MODEL_FILE
    save_atomic({"model": voice_weights(weights, config, sizes), "config": config_dict,
                  "step": step, "r": model.decoder.r, "sizes": sizes.to_dict()}, voice)
    write_json_atomic(out / "config.json", config_dict)
    prune_checkpoints(out, KEEP_CHECKPOINTS)
    return path, voice


def voice_weights(weights: dict, config, sizes: Sizes) -> dict:
    """What Coqui's stock Tacotron2 for ``config`` loads: the weights, zero-padded to
    its widths when the model was reduced."""
    if sizes.full:
        return weights

    from voicebot.training.tacotron_size import pad_state
    from voicebot.tts.coqui_checkpoint import setup_tacotron2

    return pad_state(weights, sizes, setup_tacotron2(config).state_dict())


def load_weights(model, state: dict, sizes: Sizes) -> None:
    """Load a checkpoint's weights into ``model`` (already shrunk to ``sizes``): reduced
    weights as they are, padded ones (a voice file) cut back out."""
    weights = state["model"]
    if not sizes.full and weights["embedding.weight"].shape[1] != sizes.encoder:
        from voicebot.training.tacotron_size import unpad_state

        weights = unpad_state(weights, sizes, model.state_dict())
    model.load_state_dict(weights)


# ----- model set-up -----------------------------------------------------------------
def installed_base() -> Path | None:
    """The catalog's pretrained LJSpeech Tacotron2, when the user installed it."""
    try:
        from voicebot.models import resolve

        return resolve(BASE_ID)
    except Exception:  # not installed (or no store): train from scratch
        return None


def scratch_config(r: int | None):
    from voicebot.tts.random_voice import tacotron2_config

    config = tacotron2_config()
    if r:
        config.r = r
        # DDC's coarse decoder needs a larger r than the fine one; off for custom r.
        config.double_decoder_consistency = False
    return config


def build_model(options: TrainOptions, resume_state: dict | None, base: Path | None):
    """(model, config, base description, warnings, sizes)."""
    import torch

    from voicebot.training.tacotron_size import shrink
    from voicebot.tts.coqui_checkpoint import (
        CheckpointError,
        config_from_dict,
        read_checkpoint,
        setup_tacotron2,
    )
    from voicebot.tts.mel_v1 import is_v1_audio

    warnings = []
    if resume_state is not None:
        config = config_from_dict(resume_state["config"])
        sizes = Sizes.from_dict(resume_state.get("sizes"))
        model = shrink(setup_tacotron2(config), sizes)
        load_weights(model, resume_state, sizes)
        model.decoder.set_r(int(resume_state.get("r", config.r)))
        return model, config, "resumed", warnings, sizes
    if options.new_config is not None:
        torch.manual_seed(options.seed)
        sizes = options.sizes or Sizes()
        model = shrink(setup_tacotron2(options.new_config), sizes)
        return model, options.new_config, "new", warnings, sizes
    if base is not None:
        try:
            state, raw = read_checkpoint(Path(base))
        except CheckpointError as exc:
            raise TrainingError(f"cannot use the base checkpoint: {exc}") from exc
        if str(raw.get("model", "")).lower() != "tacotron2":
            raise TrainingError(f"{base} holds a {raw.get('model')!r} model, not tacotron2")
        config = config_from_dict(raw)
        sizes = Sizes.from_dict(state.get("sizes"))
        piper_taught = is_v1_audio(config.audio)  # a base made here, not Coqui's
        # Fine-tuning: a small constant learning rate, no warm-up from zero. Set before
        # the model is built: the model keeps its own copy of the config.
        config.lr_scheduler = None
        config.lr = options.lr or (PIPER_BASE_FINE_TUNE_LR if piper_taught
                                   else FINE_TUNE_LR)
        model = shrink(setup_tacotron2(config), sizes)
        try:
            load_weights(model, state, sizes)
        except RuntimeError as exc:
            raise TrainingError(f"{base}: the weights do not fit its config: {exc}") from exc
        model.decoder.set_r(int(state.get("r", raw.get("r", config.r))))
        return model, config, str(base), warnings, sizes
    torch.manual_seed(options.seed)
    config = scratch_config(options.r)
    if options.lr:
        config.lr = options.lr
    model = setup_tacotron2(config)
    warnings.append("This run trains from scratch (--scratch): expect a usable voice "
                    "only after many hours of recordings (LJSpeech has 24) and days of "
                    "GPU time. Without --scratch it fine-tunes a base voice (the "
                    "installed Coqui Tacotron2, or the one taught by the built-in Piper "
                    "voice) with minutes of recordings instead.")
    return model, config, "scratch", warnings, Sizes()


def init_output_bias(model, items: list[Item]) -> None:
    """Start the frame projection at the corpus's mean log-mel per channel.

    The V1 mel is not normalized (about -6 on average, silence at -11.5), so a model
    starting at 0 spends its first ~60 steps only learning that offset (MSE ~44 -> ~6,
    measured), with the attention untouched meanwhile; starting at the mean skips that.
    """
    import torch

    mean = np.concatenate([it.mel for it in items[:500]]).mean(axis=0)  # (channels,)
    layer = model.decoder.linear_projection.linear_layer
    frames = layer.bias.shape[0] // mean.shape[0]  # r frames of all channels per step
    with torch.no_grad():
        layer.bias.copy_(torch.from_numpy(np.tile(mean, frames)).to(layer.bias.dtype))


def resolve_base(options: TrainOptions, stop, device_type: str) -> tuple[Path | None, int]:
    """(base checkpoint or None for scratch / a new config, exit code of a base build).

    Order: --base, the installed Coqui base, the cached Piper-taught base, else build
    that base now (a cancelled or failed build returns its code and no base).
    """
    if options.new_config is not None:
        return None, 0
    if options.base is not None:  # --base wins over --scratch
        return Path(options.base), 0
    if options.scratch:
        return None, 0
    for found in (installed_base(), _cached_piper_base()):
        if found is not None:
            return found, 0
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # every rank would build it at once
        raise TrainingError("no base voice is built yet: run `voicebot train base` once "
                            "(it takes minutes on a GPU), then start the torchrun again")
    from voicebot.training import base_voice

    recipe = base_voice.reduced_recipe(options.base_minutes, options.base_steps,
                                       device_type)
    code, folder = base_voice.build_base(base_voice.BuildOptions(
        recipe=recipe, device=options.device, threads=options.threads,
        preview=options.preview, then_steps=options.max_steps or DEFAULT_FINE_TUNE_STEPS),
        stop)
    if code != 0 or (stop is not None and stop.set):
        return None, code
    found = base_voice.cached_base(folder)
    if found is None:
        raise TrainingError(f"the base voice build in {folder} did not finish")
    return found, 0


def _cached_piper_base() -> Path | None:
    from voicebot.training.base_voice import cached_base

    return cached_base()


def pick_device(requested: str, dist: Dist):
    """run_folder.pick_device for this rank; a missing GPU is a TrainingError (one line)."""
    try:
        return run_folder.pick_device(requested, dist.local_rank)
    except run_folder.DeviceError as exc:
        raise TrainingError(str(exc)) from None


# ----- previews ---------------------------------------------------------------------
class Previewer:
    """Speaks a fixed sentence with the current weights through the embedded HiFi-GAN V1
    (or ``vocoder``; the mel converted when its kind differs), else Griffin-Lim from the
    predicted mel, labelled as such in ``vocoder_name``."""

    def __init__(self, config, audio_processor, vocoder: Path | None) -> None:
        self.ap = audio_processor
        self.config = config
        self.generator = None
        self.renormalize = None
        self.vocoder_name = "griffin-lim"
        path, name = _preview_vocoder(vocoder)
        if path is not None:
            try:
                from voicebot.tts.hifigan_v1 import load_vocoder
                from voicebot.tts.mel_v1 import renormalizer

                self.generator, vocoder_config = load_vocoder(Path(path))
                self.renormalize = renormalizer(config.audio, vocoder_config.audio)
                self.vocoder_name = f"hifigan ({name})"
            except Exception as exc:
                log.warning("vocoder %s unusable for previews (%s); using Griffin-Lim",
                            path, exc)
                self.generator = None

    def synthesize(self, model, text: str) -> np.ndarray:
        import torch

        from voicebot.text.spoken import normalize

        ids = torch.tensor([model.tokenizer.text_to_ids(normalize(text))], dtype=torch.long)
        decoder = model.decoder
        saved = decoder.max_decoder_steps
        # An early model rarely fires its stop token: cap the length at what a slow
        # reader would need (about 12 frames per character).
        decoder.max_decoder_steps = min(saved, 12 * len(text) // decoder.r + 20)
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                outputs = model.inference(ids.to(next(model.parameters()).device))
        finally:
            decoder.max_decoder_steps = saved
            model.train(was_training)
        mel = outputs["model_outputs"][0].float().cpu().numpy()  # (frames, mels)
        if self.generator is not None:
            mel_v = mel.T if self.renormalize is None else self.renormalize(mel.T)
            with torch.inference_mode():
                audio = self.generator(torch.from_numpy(np.ascontiguousarray(mel_v))[None]
                                       .float())
            return audio.reshape(-1).numpy()
        return self.ap.inv_melspectrogram(mel.T).astype(np.float32)


def _preview_vocoder(vocoder: Path | None) -> tuple[Path | None, str]:
    """(checkpoint, name): the given one, else the embedded V1, else Coqui's V2."""
    if vocoder is not None:
        return Path(vocoder), Path(vocoder).name
    from voicebot.models import resolve
    from voicebot.tts.voices import DEFAULT_VOCODER  # what the voice speaks through

    for model_id in (DEFAULT_VOCODER, VOCODER_ID):
        try:
            return resolve(model_id), model_id
        except Exception:  # not installed
            continue
    return None, "griffin-lim"


class _StepModule:
    """Wraps the model so DistributedDataParallel sees train_step as its forward."""

    @staticmethod
    def make(model, criterion):
        import torch

        class StepModule(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, batch):
                guide = getattr(criterion, "criterion_ga", None)
                if hasattr(guide, "centres"):  # attention_targets' loss reads them
                    guide.centres = batch.get("attention_centres")
                return self.model.train_step(batch, criterion)

        return StepModule()


def train(options: TrainOptions, stop: StopFlag | None = None) -> int:
    """Run training; returns the process exit code. Emits the protocol on stdout."""
    out = Path(options.out)
    # Checked before torch loads (seconds): a wrong folder is answered at once.
    tag = {"phase": options.phase} if options.phase else {}
    if not options.resume and checkpoint_files(out):
        progress.emit("error", message=f"{out} already holds checkpoints: pass --resume to "
                                       "continue them, or choose another output folder",
                      **tag)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    run_lock = RunLock(out)
    if int(os.environ.get("RANK", "0")) == 0 and not run_lock.acquire():
        progress.emit("error", message=f"another training process is writing {out} (it may "
                                       "still be running in the background)", **tag)
        return 2
    # Half-written checkpoints of a run that was killed while saving.
    remove_stale_temps(out)
    import torch
    from TTS.utils.audio import AudioProcessor

    stop = stop or StopFlag()
    if options.threads:
        torch.set_num_threads(options.threads)
    device = pick_device(options.device, Dist())
    dist = init_distributed(device.type)
    if dist.world_size > 1:
        device = pick_device(options.device, dist)
    main = dist.is_main
    log_file = open(out / "progress.jsonl", "a", encoding="utf-8") if main else None  # noqa: SIM115

    def emit(name, **fields):
        if main:
            progress.emit(name, log_file=log_file, **tag, **fields)

    try:
        resume_path, resume_state = (latest_checkpoint(out) if options.resume
                                     else (None, None))
        if options.resume and resume_state is None:
            log.info("--resume: no checkpoint in %s yet, starting fresh", out)
        base_path = None
        if resume_state is None:
            base_path, code = resolve_base(options, stop, device.type)
            if code != 0 or stop.set:  # the base build failed or was cancelled
                return code
        model, config, base, warnings, sizes = build_model(options, resume_state, base_path)
        # The model's own copy: it holds what the tokenizer filled in (the character
        # set), which the checkpoint must carry to be read back the same way.
        config = model.config
        ap = AudioProcessor(config.audio)
        heldout_ids: list[str] = []
        if options.items is not None:
            items = list(options.items)
        else:
            items, heldout_ids = load_items(options.data, model, mel_function(config, ap),
                                            int(config.audio.sample_rate), options.heldout)
            if main:
                _write_heldout(out, heldout_ids)
        if base == "new":
            init_output_bias(model, items)
        minutes = sum(len(it.mel) for it in items) * ap.hop_length / ap.sample_rate / 60
        max_steps = options.max_steps or (DEFAULT_SCRATCH_STEPS if base == "scratch"
                                          else DEFAULT_FINE_TUNE_STEPS)
        model.to(device).train()
        criterion = model.get_criterion().to(device)
        if options.attention_path and getattr(criterion, "criterion_ga", None) is not None \
                and any(it.positions is not None for it in items):
            # The teacher said where each frame's phoneme is: guide the attention
            # along that path rather than the straight diagonal.
            criterion.criterion_ga = guided_attention_loss(criterion.criterion_ga)
        optimizer = model.get_optimizer()
        scheduler = model.get_scheduler([optimizer])  # Coqui passes a list
        use_cuda = device.type == "cuda"
        amp_dtype = (torch.bfloat16 if use_cuda and torch.cuda.is_bf16_supported()
                     else torch.float16)
        # bf16 has fp32's range: no loss scaling needed; fp16 needs the scaler.
        scaler = torch.amp.GradScaler("cuda") if use_cuda and amp_dtype == torch.float16 \
            else None
        precision = ("bf16-mixed" if amp_dtype == torch.bfloat16 else "fp16-mixed") \
            if use_cuda else "fp32"
        step, epoch, position = 0, 0, 0
        if resume_state is not None:
            optimizer.load_state_dict(resume_state["optimizer"])
            if scheduler is not None and resume_state.get("scheduler"):
                scheduler.load_state_dict(resume_state["scheduler"])
            if scaler is not None and resume_state.get("scaler"):
                scaler.load_state_dict(resume_state["scaler"])
            step, epoch = int(resume_state["step"]), int(resume_state["epoch"])
            position = int(resume_state.get("position", 0))
        stepper = _StepModule.make(model, criterion)
        if dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            # Every module Coqui builds for the config takes part in each step (the
            # DDC and backward decoders exist only when enabled), so no unused-parameter
            # search per step.
            stepper = DistributedDataParallel(
                stepper, device_ids=[device.index] if use_cuda else None)
        previewer = Previewer(config, ap, options.vocoder) if (main and options.preview) \
            else None
        emit("start", device=str(device), precision=precision, world_size=dist.world_size,
             max_steps=max_steps, start_step=step, takes=len(items),
             minutes=round(minutes, 2), base=base,
             resumed_from=str(resume_path) if resume_path else None,
             batch_size=options.batch_size, r=model.decoder.r,
             preview_vocoder=previewer.vocoder_name if previewer else None,
             heldout=len(heldout_ids), parameters=sum(p.numel() for p in model.parameters()),
             sizes=sizes.to_dict())
        for message in warnings if main else ():
            emit("warning", message=message)
            log.warning(message)
        scorer = None
        if main and options.score and heldout_ids and options.phase != "base":
            from voicebot.training.run_scoring import RunScorer

            scorer = RunScorer(out, Path(options.data), heldout_ids,
                               base_voice=base_path or _cached_piper_base(),
                               device=device.type, emit=emit)

        def checkpoint():
            if not main:
                return None
            path, _ = save_training_state(out, model, config, optimizer, scheduler,
                                          scaler, step, epoch, position, sizes)
            emit("checkpoint", step=step, path=str(path), model_path=str(out))
            if previewer is not None:
                try:
                    from voicebot.audio.wav_io import write_wav_atomic

                    audio = previewer.synthesize(model, options.preview_text)
                    sample = out / "samples" / f"step_{step:07d}.wav"
                    write_wav_atomic(sample, np.clip(audio, -1, 1), ap.sample_rate)
                    emit("sample", step=step, path=str(sample), text=options.preview_text,
                         vocoder=previewer.vocoder_name)
                except Exception as exc:  # a preview must never stop training
                    log.warning("preview failed at step %d: %s", step, exc)
            if scorer is not None and options.score_every and step % options.score_every == 0:
                scorer.score(step)
            return path

        per_rank = max(1, options.batch_size)
        global_batch = per_rank * dist.world_size
        window: list[tuple[float, int]] = []
        last_saved = step
        lengths = [len(it.mel) for it in items]
        order = epoch_order(lengths, global_batch, epoch, options.seed)
        while step < max_steps and not _agreed_stop(stop, dist, torch, device):
            if position >= len(order):
                epoch, position = epoch + 1, 0
                order = epoch_order(lengths, global_batch, epoch, options.seed)
            chunk = [order[(position + k) % len(order)]
                     for k in range(min(global_batch, len(order)))]
            position += len(chunk)
            mine = chunk[dist.rank::dist.world_size] or chunk[:1]
            batch = make_batch([items[i] for i in mine], model.decoder.r, torch, device)
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_cuda):
                outputs, losses = stepper(batch)
            loss = losses["loss"]
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            elif torch.isfinite(grad_norm):
                optimizer.step()
            else:
                log.warning("step %d: non-finite gradient, update skipped", step + 1)
            if scheduler is not None:
                scheduler.step()
            step += 1
            elapsed = time.perf_counter() - started
            window = [*window[-19:], (elapsed, len(chunk))]
            if main and step % options.log_every == 0:
                seconds = sum(w[0] for w in window)
                steps_per_s = len(window) / seconds if seconds else 0.0
                eta = (max_steps - step) / steps_per_s if steps_per_s else None
                emit("step", step=step, epoch=epoch,
                     align_score=round(batch_score(
                         outputs["alignments"], batch["text_lengths"], batch["mel_lengths"],
                         model.decoder.r), 4),
                     path_error=_rounded(path_error(
                         outputs["alignments"], batch["attention_centres"],
                         batch["mel_lengths"], model.decoder.r)),
                     losses={k: _number(v) for k, v in losses.items()},
                     grad_norm=_number(grad_norm), lr=optimizer.param_groups[0]["lr"],
                     steps_per_s=round(steps_per_s, 4),
                     samples_per_s=round(sum(w[1] for w in window) / seconds, 3)
                     if seconds else 0.0,
                     eta_s=round(eta, 1) if eta is not None else None,
                     total_eta_s=round(eta + options.then_steps / steps_per_s, 1)
                     if eta is not None else None,
                     gpu_mem_mb=round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
                     if use_cuda else None)
            if step - last_saved >= options.checkpoint_every:
                checkpoint()
                last_saved = step
        if step != last_saved or not checkpoint_files(out):
            final = checkpoint()
        else:
            final = checkpoint_files(out)[-1] if main else None
        best_step = None
        if scorer is not None:
            if not stop.set and scorer.last_scored_step != step:
                scorer.score(step)
            best_step = scorer.finish(step)
        if stop.set:
            emit("cancelled", step=step, checkpoint=str(final) if final else None,
                 signal=stop.signal, best_step=best_step)
        else:
            emit("done", step=step, checkpoint=str(final) if final else None,
                 model_path=str(out), best_step=best_step)
        return 0
    except TrainingError as exc:
        emit("error", message=str(exc))
        log.error("%s", exc)
        return 2
    finally:
        run_lock.release()
        if log_file is not None:
            log_file.close()
        if dist.world_size > 1:
            import torch.distributed as tdist

            with contextlib.suppress(Exception):
                tdist.destroy_process_group()


def _write_heldout(out: Path, ids: list[str]) -> None:
    from voicebot.training.heldout import EVERY, HELDOUT_FILE

    write_json_atomic(out / HELDOUT_FILE, {"every": EVERY, "ids": ids})


def _agreed_stop(stop: StopFlag, dist: Dist, torch, device) -> bool:
    """All ranks stop together when any of them was signalled."""
    if dist.world_size <= 1:
        return stop.set
    import torch.distributed as tdist

    flag = torch.tensor([1.0 if stop.set else 0.0], device=device)
    tdist.all_reduce(flag)
    if flag.item() > 0 and not stop.set:
        stop.signal = signal.SIGTERM
    return flag.item() > 0


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _number(value) -> float | None:
    value = float(value.detach().float().cpu()) if hasattr(value, "detach") else float(value)
    return round(value, 6) if math.isfinite(value) else None
