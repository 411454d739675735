"""The base voice that needs no download: a Tacotron2 taught by the embedded Piper voice.

Fine-tuning needs a model that already speaks English; Coqui's pretrained Tacotron2 is
a download, and no English speech corpus installs offline. The Piper voice can say
anything, so it is the teacher: ``teacher_corpus`` speaks generated sentences into V1
mels, and a reduced Tacotron2 (``tacotron_size.REDUCED``, 7.8M parameters; espeak
phonemes through Coqui's tokenizer; r=5; Adam 1e-3 with warm-up) learns them. The
teacher also says how long it held each phoneme (``voicebot.tts.piper_durations``), so
each step reports how far the attention is from that path (``path_error``), and a
recipe can guide the attention along it rather than along the straight diagonal
(``attention_path``; off by default: measured, it did not make the voice speak
sooner). The result is built once per machine and cached in the user data folder,
keyed by ``RECIPE_VERSION`` and the Piper model file's sha256, so a new recipe or a
different teacher builds a new base and the old one is never mistaken for it.

``voicebot train base`` builds (or continues) it on its own; ``voicebot train tts``
builds it first when no other base exists. Every event of the build carries
``"phase": "base"`` (``voicebot.training.progress``).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from voicebot.atomic_write import write_json_atomic
from voicebot.training import progress
from voicebot.training.tacotron_size import REDUCED, Sizes

log = logging.getLogger(__name__)

RECIPE_VERSION = "2"  # bump when the model, tokenizer or training recipe changes
# The teacher corpus's key: changed when the tokenizer or what the corpus stores
# changes. Recipe 2 (the stop token's weight) shared recipe 1's corpus; corpus 3 also
# holds the teacher's phoneme path (``positions``).
CORPUS_RECIPE = "3"
MARKER = "base.json"  # written when a build reached its steps: the base is usable
# Piper sentences of this grammar average ~2.9 s (measured on 3000: see the report);
# the corpus size for a requested duration is planned with it and then measured.
SECONDS_PER_SENTENCE = 2.9


@dataclass(frozen=True)
class BaseRecipe:
    minutes: float  # of teacher speech
    max_steps: int
    batch_size: int = 24
    r: int = 5
    sizes: Sizes = field(default=REDUCED)
    lr: float = 1e-3
    warmup_steps: int = 200
    # Coqui's guided-attention loss is a mean over all (frame, token) cells, ~0.005 for
    # a spread attention, against a mel MSE of 3-6 on V1 log-mels: at Coqui's default
    # weight 5 it is noise. At 50 it is ~10% of the loss; 500 aligned no faster (0.33
    # vs 0.34 diagonal score at step 65, measured on the test recipe).
    ga_alpha: float = 50.0
    # The stop target is 1 on one decoder step per sentence (the last: Piper's trailing
    # silence is trimmed to 4 frames, under one r=5 step) against 0 on the others,
    # ~53 steps per teacher sentence on average (measured on the 166-sentence corpus).
    # Coqui's default pos_weight 0.2 makes that 1:264, and the stopnet learns "never":
    # a 400-step base fired its stop on 0 of 10 unseen sentences. A weight w fires where
    # the true posterior exceeds 1/(w+1): 10 asks for ~9% (the end localised within
    # ~10 steps), short of the 52 that would balance the classes and fire early.
    # Measured (8 teacher minutes, batch 8, free-running on 10 unseen sentences): at 0.2
    # and 400 steps the stop fired on 0 of 10 (peak probability 0.010-0.018); at 10 and
    # 300 steps on 10 of 10, at 0.68-1.11x the teacher's length (median 0.90), with the
    # attention within 3 tokens of the end on 5 (the others cut the last 4-9 phonemes:
    # the stopnet is still coarse that early).
    stopnet_pos_weight: float = 10.0
    # Guide the attention along the teacher's phoneme path (attention_targets) instead
    # of Coqui's diagonal prior. Measured on this 2-core CPU (33 teacher minutes, batch
    # 24, one thread each, the same seed; 20 unseen sentences through the V1 HiFi-GAN and
    # Whisper): the teacher-forced attention was 0.52 / 0.37 / 0.33 / 0.34 tokens from
    # the path at steps 400 / 600 / 800 / 1000 against 1.69 / 0.89 / 0.53 / 0.41 with
    # the diagonal, but the voice was no easier to understand: character error 0.789 vs
    # 0.787 at step 800, 0.702 vs 0.705 at step 1000 (word error 1.03 vs 0.98, both
    # mostly wrong words). So it stays off.
    attention_path: bool = False
    seed: int = 0
    max_decoder_steps: int = 1000  # x r frames: 58 s of speech at r=5
    max_words: int | None = None  # only sentences this short (quick tests)

    @property
    def sentences(self) -> int:
        seconds = SECONDS_PER_SENTENCE if not self.max_words else 0.3 * self.max_words
        return max(8, math.ceil(self.minutes * 60 / seconds))


# What a machine builds when the user does not choose. On CPU one step of 24 teacher
# sentences in random batches took 9.0 s on one thread of this 2-core machine while
# other jobs ran (8: 2.6 s, 16: 6.9 s, 32: 10.9 s: the cost per sentence is nearly flat,
# so the batch is as large as an ETA of one night allows). Batches of similar length
# (tts_train.epoch_order) cut the padding: a build on two threads ran 2.5 s a step over
# its first 200 steps and 4.0 s over steps 1200-1400 (a fresh process resumed there ran
# 3.2 s: the host's share of the CPU varied). 4000 steps are thus 3-4.5 hours: a night
# at most. On one GPU the recipe runs in minutes, so it gets more data and steps.
CPU_RECIPE = BaseRecipe(minutes=60, max_steps=4000)
CUDA_RECIPE = BaseRecipe(minutes=180, max_steps=20000, batch_size=64)


def default_recipe(device: str) -> BaseRecipe:
    return CUDA_RECIPE if device == "cuda" else CPU_RECIPE


def base_config(recipe: BaseRecipe):
    """The Coqui Tacotron2 config of the base: V1 mel, espeak phonemes, r, guided
    attention, Noam warm-up. A fine-tune inherits it from the checkpoint."""
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.tacotron2_config import Tacotron2Config

    from voicebot.tts.mel_v1 import v1_audio_config

    return Tacotron2Config(
        audio=BaseAudioConfig(**v1_audio_config()),
        # Coqui's espeak phonemizer: ids are made by the model's own tokenizer, so
        # ``TacotronVoice`` (model.tokenizer.text_to_ids) speaks it unchanged.
        use_phonemes=True, phonemizer="espeak", phoneme_language="en-us",
        text_cleaner="phoneme_cleaners", r=recipe.r, double_decoder_consistency=False,
        ga_alpha=recipe.ga_alpha, stopnet_pos_weight=recipe.stopnet_pos_weight,
        lr=recipe.lr, lr_scheduler="NoamLR",
        lr_scheduler_params={"warmup_steps": recipe.warmup_steps},
        # SSIM losses cost ~10% of a CPU step and assume mels scaled to [0, 1].
        decoder_ssim_alpha=0.0, postnet_ssim_alpha=0.0, grad_clip=1.0,
        max_decoder_steps=recipe.max_decoder_steps, batch_size=recipe.batch_size,
        mixed_precision=False)


# ----- the cache -----------------------------------------------------------------------
def piper_sha() -> str:
    from voicebot.training.teacher_corpus import file_sha256, piper_model_file

    return file_sha256(piper_model_file())


def base_root() -> Path:
    from voicebot.paths import user_dirs

    return user_dirs().data / "base-voices"


def base_folder(sha: str | None = None) -> Path:
    return base_root() / f"piper-taught-v{RECIPE_VERSION}-{(sha or piper_sha())[:16]}"


def corpus_folder(sha: str | None = None) -> Path:
    from voicebot.paths import user_dirs
    from voicebot.training.teacher_corpus import CORPUS_VERSION

    return (user_dirs().cache / "teacher-corpus"
            / f"c{CORPUS_VERSION}-v{CORPUS_RECIPE}-{(sha or piper_sha())[:16]}")


def cached_base(folder: Path | None = None) -> Path | None:
    """The finished base of this recipe and teacher, or None (not built, or a build
    that has not reached its steps yet)."""
    try:
        folder = folder or base_folder()
    except Exception as exc:  # no Piper voice installed: no Piper-taught base either
        log.info("no Piper-taught base: %s", exc)
        return None
    marker = folder / MARKER
    if not marker.is_file() or not (folder / "model_file.pth").is_file():
        return None
    try:
        json.loads(marker.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return folder


# ----- building ------------------------------------------------------------------------
@dataclass
class BuildOptions:
    recipe: BaseRecipe
    out: Path | None = None  # default: the cache folder
    device: str = "auto"
    threads: int | None = None
    checkpoint_every: int = 200
    preview: bool = True
    then_steps: int = 0  # fine-tune steps that follow (for the total ETA)
    log_every: int = 1


def cpu_threads(options: BuildOptions) -> int | None:
    """torch threads for a build: the user's choice, else one on the CPU.

    Measured on this 2-core machine with other jobs running: a step of 8 sentences took
    2.6 s on one thread and 16 s on two (torch's spinning pool collapses when a core is
    taken), and the app always has other work (the UI, a conversation) beside it.
    """
    if options.threads:
        return options.threads
    return None if options.device == "cuda" else 1


def prepare_corpus(recipe: BaseRecipe, tokenizer, *, folder: Path | None = None,
                   emit=progress.emit, threads: int = 2):
    """The teacher items of ``recipe`` (synthesised now or read from the cache)."""
    from voicebot.training import teacher_corpus

    folder = folder or corpus_folder()
    texts = teacher_corpus.sentences(recipe.sentences, seed=recipe.seed,
                                     max_words=recipe.max_words)
    emit("corpus", phase="base", done=0, total=len(texts), minutes=0.0, folder=str(folder))
    return teacher_corpus.synthesize(
        folder, texts, tokenizer.text_to_ids, token_text=tokenizer.decode,
        threads=threads, seed=recipe.seed,
        on_progress=lambda p: emit("corpus", phase="base", **p))


def build_base(options: BuildOptions, stop=None) -> tuple[int, Path]:
    """Synthesise the corpus and train the base (resuming a build in progress).

    Returns (exit code as ``tts_train.train`` gives it, base folder). A build cancelled
    by ``stop`` leaves a resumable folder without the marker.
    """
    import torch

    from voicebot.training import tts_train
    from voicebot.tts.coqui_checkpoint import setup_tacotron2

    recipe = options.recipe
    sha = piper_sha()
    out = Path(options.out or base_folder(sha))
    config = base_config(recipe)
    torch.manual_seed(recipe.seed)
    tokenizer = setup_tacotron2(config).tokenizer  # the ids the student reads
    corpus = corpus_folder(sha)
    if recipe.max_words:  # another sentence list: its own cache
        corpus = corpus.with_name(f"{corpus.name}-w{recipe.max_words}")
    items = prepare_corpus(recipe, tokenizer, folder=corpus,
                           threads=max(2, options.threads or 2))
    if stop is not None and stop.set:
        progress.emit("cancelled", phase="base", step=0, checkpoint=None)
        return 0, out
    train_items = [tts_train.Item(it.id, it.ids, it.mel, it.positions) for it in items]
    code = tts_train.train(tts_train.TrainOptions(
        data=None, out=out, resume=True, items=train_items, new_config=config,
        sizes=recipe.sizes, max_steps=recipe.max_steps, batch_size=recipe.batch_size,
        checkpoint_every=options.checkpoint_every, preview=options.preview,
        device=options.device, seed=recipe.seed, threads=cpu_threads(options),
        phase="base", attention_path=recipe.attention_path,
        then_steps=options.then_steps, log_every=options.log_every,
        heldout=False), stop)
    finished = code == 0 and not (stop is not None and stop.set)
    if finished:
        state = tts_train.latest_checkpoint(out)[1]
        if state is not None and int(state["step"]) >= recipe.max_steps:
            _write_marker(out, recipe, sha, len(items), int(state["step"]))
    return code, out


def _write_marker(out: Path, recipe: BaseRecipe, sha: str, sentences: int,
                  step: int) -> None:
    from voicebot.training.teacher_corpus import PIPER_VOICE

    record = {"recipe_version": RECIPE_VERSION, "teacher": PIPER_VOICE,
              "teacher_sha256": sha, "sentences": sentences, "minutes": recipe.minutes,
              "steps": step, "batch_size": recipe.batch_size, "r": recipe.r,
              "sizes": recipe.sizes.to_dict()}
    write_json_atomic(out / MARKER, record)


def reduced_recipe(minutes: float | None, steps: int | None, device: str) -> BaseRecipe:
    """The default recipe with the user's (or a bench's) smaller minutes / steps."""
    recipe = default_recipe(device)
    if minutes is not None:
        recipe = replace(recipe, minutes=minutes)
    if steps is not None:
        recipe = replace(recipe, max_steps=steps)
    return recipe
