"""LoRA fine-tuning of the Whisper recogniser on the user's own takes (``voicebot train asr``).

Same conventions as the voice training (``tts_train``): its own process, JSON progress
lines on stdout (``voicebot.training.progress``), SIGTERM/SIGINT finish the step, save a
checkpoint and exit 0 with ``cancelled``, ``--resume`` continues from the newest
checkpoint with the same step count, recordings are only read.

Run folder (``--out``), handled as every trainer's (``voicebot.training.run_folder``: one
trainer per folder, atomic saves, stale temporaries removed):
- ``checkpoint_<step>.pth``: LoRA weights, optimizer, scaler, step, WER before, options
  (the last two kept; ``torch.load(weights_only=True)``).
- ``adapter/``: the adapter to use (``voicebot.asr.lora``), rewritten at each checkpoint;
  its path is the ``model_path`` of ``checkpoint`` events and what settings point to.
- ``progress.jsonl``: every event.

Held-out split: every 5th take (by metadata order) is never trained on; greedy WER on
those takes is measured before training (adapter off) and after (adapter on), reported
in ``eval`` events and in ``done``/``cancelled`` as ``wer_before``/``wer_after``. It is
measured on the float32 training model; ``voicebot asr-eval --adapter`` measures the
int8 model the app loads.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voicebot.asr.lora import add_lora, save_adapter, text_tokens, whisper_loss
from voicebot.asr.wer import ErrorCounts, count_errors
from voicebot.audio.resample import ASR_RATE
from voicebot.settings import AsrSettings
from voicebot.training import progress
from voicebot.training.run_folder import (
    DeviceError,
    RunFolderError,
    RunLock,
    busy_message,
    latest_checkpoint,
    pick_device,
    prune_checkpoints,
    refuse_existing_run,
    remove_stale_temps,
    save_atomic,
    set_cpu_threads,
)

log = logging.getLogger(__name__)

HELDOUT_EVERY = 5
KEEP_CHECKPOINTS = 2
DEFAULT_STEPS = 200
DEFAULT_LR = 5e-4
ADAPTER_DIR = "adapter"
# Whisper's window; longer takes cannot be trained on whole.
MAX_TAKE_SECONDS = 29.0


class AsrTrainingError(RuntimeError):
    """Bad input to an adaptation run (no data, too few takes, unreadable checkpoint)."""


@dataclass
class AsrTrainOptions:
    data: Path
    out: Path
    resume: bool = False
    model: str | None = None  # catalog Whisper id; None = the one in settings
    max_steps: int | None = None
    batch_size: int = 8
    lr: float | None = None
    rank: int = 8
    checkpoint_every: int = 50
    device: str = "auto"
    threads: int | None = None
    seed: int = 0


@dataclass
class Take:
    id: str
    text: str
    audio: np.ndarray  # float32, 16 kHz mono


def load_takes(data: Path) -> list[Take]:
    from voicebot.audio.wav_io import AudioFileError, read_wav
    from voicebot.training.dataset import read_metadata

    metadata = Path(data) / "metadata.csv"
    if not metadata.is_file():
        raise AsrTrainingError(f"{data} has no metadata.csv (LJSpeech layout expected)")
    takes = []
    for take_id, text in read_metadata(metadata):
        wav = Path(data) / "wavs" / f"{take_id}.wav"
        if "/" in take_id or "\\" in take_id or not wav.is_file() or not text.strip():
            log.warning("skipping %s: no wavs/%s.wav or no text", take_id, take_id)
            continue
        try:
            # The wizard records 22.05 kHz; Whisper hears 16 kHz.
            audio = read_wav(wav, sample_rate=ASR_RATE).samples.astype(np.float32)
        except AudioFileError as exc:
            log.warning("skipping %s: %s", take_id, exc)
            continue
        if len(audio) > MAX_TAKE_SECONDS * ASR_RATE:
            log.warning("skipping %s: longer than %.0f s", take_id, MAX_TAKE_SECONDS)
            continue
        takes.append(Take(take_id, text, audio))
    return takes


def split_takes(takes: list[Take]) -> tuple[list[Take], list[Take]]:
    """(train, held out): every HELDOUT_EVERY-th take is held out, deterministically."""
    if len(takes) < 2:
        raise AsrTrainingError(f"need at least 2 usable takes, found {len(takes)}")
    out = {i for i in range(len(takes)) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1}
    if not out:  # fewer than 5 takes: still keep one out, or WER means nothing
        out = {len(takes) - 1}
    return ([t for i, t in enumerate(takes) if i not in out],
            [t for i, t in enumerate(takes) if i in out])


def heldout_wer(wm, takes: list[Take]) -> dict:
    """Greedy WER of the model as it is now on ``takes``."""
    import torch

    # The adapter changed the encoder: the cached silence encoding is stale.
    wm._silence, wm._silence_kv = None, None
    counts = ErrorCounts()
    texts = []
    was_training = wm.model.training
    wm.model.eval()
    try:
        with torch.no_grad():
            for take in takes:
                text = wm.text(wm.decode(take.audio).sequences[0].tokens)
                counts.add(count_errors(take.text, text))
                texts.append(text)
    finally:
        wm.model.train(was_training)
        wm._silence, wm._silence_kv = None, None
    return {"wer": round(counts.wer, 4), "words": counts.ref_words, "texts": texts}


def _load_latest(out: Path) -> dict | None:
    _path, state = latest_checkpoint(
        out, accept=lambda st: isinstance(st, dict) and "lora" in st and "step" in st)
    return state


def train_asr(options: AsrTrainOptions, stop) -> int:
    """Run (or resume) an adaptation; returns the exit code. ``stop``: a StopFlag."""
    out = Path(options.out)
    try:
        run_lock = _claim(options, out)
    except AsrTrainingError as exc:
        progress.emit("error", message=str(exc))  # the wizard reads the reason here
        raise
    try:
        return _train_locked(options, out, stop)
    finally:
        run_lock.release()


def _claim(options: AsrTrainOptions, out: Path) -> RunLock:
    """The run folder's lock, after the checks that need no torch (answered at once)."""
    try:
        refuse_existing_run(out, options.resume)
    except RunFolderError as exc:
        raise AsrTrainingError(str(exc)) from None
    if not (Path(options.data) / "metadata.csv").is_file():
        raise AsrTrainingError(f"{options.data} has no metadata.csv (LJSpeech layout expected)")
    out.mkdir(parents=True, exist_ok=True)
    run_lock = RunLock(out)
    if not run_lock.acquire():
        raise AsrTrainingError(busy_message(out))
    return run_lock


def _train_locked(options: AsrTrainOptions, out: Path, stop) -> int:
    remove_stale_temps(out)  # a run killed while saving; ours now, under the lock
    import torch
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    from voicebot.asr.whisper_engine import converted_model_dir
    from voicebot.asr.whisper_model import WhisperModel

    log_file = open(out / "progress.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def emit(name, **fields):
        return progress.emit(name, log_file=log_file, **fields)

    try:
        state = _load_latest(out) if options.resume else None
        if options.resume and state is None:
            emit("warning", message=f"no checkpoint in {out}; starting from step 0")
        if state is not None:
            # A resumed run keeps its own model and rank whatever the command line says.
            saved = state["options"]
            options.model, options.rank = saved["model"], int(saved["rank"])
        model_id = options.model or AsrSettings().model
        if not model_id.startswith("whisper"):
            raise AsrTrainingError(f"{model_id} is not a Whisper model; only Whisper adapts")
        takes = load_takes(options.data)
        train_set, heldout = split_takes(takes)
        try:
            device = pick_device(options.device)
        except DeviceError as exc:
            raise AsrTrainingError(str(exc)) from None
        set_cpu_threads(device, options.threads)
        seed = options.seed
        random.seed(seed)
        torch.manual_seed(seed)
        # float32 weights on every device: the LoRA parameters and their optimizer state
        # stay float32; CUDA speed comes from autocast (fp16 / bf16).
        wm = WhisperModel(converted_model_dir(model_id), device=str(device),
                          cpu_threads=0, cpu_int8="none")
        if device.type == "cuda":
            wm.model.float()
            wm.dtype = torch.float32
        peft_model = add_lora(wm.model, rank=options.rank)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        lr = options.lr or DEFAULT_LR
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        use_amp = device.type == "cuda"
        amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() \
            else torch.float16
        # bf16 has float32's range: no loss scaling needed. fp16 needs the GradScaler.
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
        step, wer_before = 0, None
        if state is not None:
            set_peft_model_state_dict(peft_model, state["lora"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            step, wer_before = int(state["step"]), state.get("wer_before")
        max_steps = options.max_steps if options.max_steps is not None else DEFAULT_STEPS
        tokens = {t.id: text_tokens(wm, t.text) for t in takes}
        emit("start", task="asr", device=str(device),
             precision=str(amp_dtype).split(".")[-1] if use_amp else "float32",
             world_size=1, max_steps=max_steps, start_step=step, takes=len(takes),
             train_takes=len(train_set), heldout_takes=len(heldout),
             minutes=round(sum(len(t.audio) for t in takes) / ASR_RATE / 60, 2),
             base=model_id, rank=options.rank,
             trainable_params=sum(p.numel() for p in params))
        if wer_before is None:
            with peft_model.disable_adapter():
                before = heldout_wer(wm, heldout)
            wer_before = before["wer"]
            emit("eval", step=step, which="before", wer=wer_before, words=before["words"],
                 texts=before["texts"], references=[t.text for t in heldout])

        def save(at_step: int, wer_after: float | None = None) -> tuple[Path, Path]:
            checkpoint = save_atomic(
                {"lora": get_peft_model_state_dict(peft_model),
                 "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                 "step": at_step, "wer_before": wer_before,
                 "options": {"model": model_id, "rank": options.rank}},
                out / f"checkpoint_{at_step}.pth")
            prune_checkpoints(out, KEEP_CHECKPOINTS)
            adapter = save_adapter(peft_model, out / ADAPTER_DIR, model_id, steps=at_step,
                                   rank=options.rank, takes=len(train_set),
                                   heldout_takes=len(heldout), wer_before=wer_before,
                                   wer_after=wer_after, data=str(Path(options.data).resolve()))
            emit("checkpoint", step=at_step, path=str(checkpoint), model_path=str(adapter))
            return checkpoint, adapter

        def finish(name: str) -> int:
            after = heldout_wer(wm, heldout)
            emit("eval", step=step, which="after", wer=after["wer"], words=after["words"],
                 texts=after["texts"], references=[t.text for t in heldout])
            checkpoint, adapter = save(step, after["wer"])
            emit(name, step=step, checkpoint=str(checkpoint), model_path=str(adapter),
                 wer_before=wer_before, wer_after=after["wer"])
            return 0

        peft_model.train()
        rng = random.Random(seed)
        order: list[int] = []
        started, started_step = time.perf_counter(), step
        while step < max_steps:
            if stop.set:
                return finish("cancelled")
            if len(order) < options.batch_size:
                # Reshuffled per pass; seeded by the step so a resumed run is reproducible.
                rng.seed(seed * 1_000_003 + step)
                more = list(range(len(train_set)))
                rng.shuffle(more)
                order += more
            batch = [train_set[i] for i in order[:options.batch_size]]
            del order[:options.batch_size]
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                loss = whisper_loss(wm, [t.audio for t in batch], [tokens[t.id] for t in batch])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            elapsed = time.perf_counter() - started
            rate = (step - started_step) / elapsed if elapsed > 0 else 0.0
            fields = {}
            if device.type == "cuda":
                fields["gpu_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
            emit("step", step=step, epoch=step * options.batch_size // len(train_set),
                 losses={"loss": round(float(loss.detach()), 5)}, lr=lr,
                 steps_per_s=round(rate, 4), samples_per_s=round(rate * len(batch), 3),
                 eta_s=round((max_steps - step) / rate, 1) if rate > 0 else None, **fields)
            if step % options.checkpoint_every == 0 and step < max_steps:
                save(step)
        return finish("done")
    except AsrTrainingError as exc:
        emit("error", message=str(exc))
        raise
    except Exception as exc:  # a missing model, CUDA out of memory...: the UI must hear it
        emit("error", message=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        log_file.close()
