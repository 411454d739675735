"""The stand-in user: a second voice that reads the prompt set as a user would.

The embedded Piper voice cannot play the user (it is the teacher of the base voice), so
tests and ``voicebot bench adapt`` use hibari's bundled "heart" voice (a female US voice
distilled from Kokoro af_heart; the test-only package ``hibari-tts``) to read the prompts
into a real voice dataset folder, exactly the way the wizard stores recorded takes:
each take is checked by ``voicebot.training.quality.TakeChecker`` at 22.05 kHz, stored
trimmed to its speech (take id ``p<prompt index>``, the check result and the prompt
index kept), and a take that fails the checks is noted as rejected, never stored.

Measured here (2026-12-06): all 216 prompts pass the checks as synthesised (peak -3.4 to
-12.2 dBFS, speech RMS -24.4 to -27.2 dBFS, 1.8-3.6 s of speech per take, digital
silence between words, about 0.3 s of silence before the speech and 0.5 s after), so no
room noise or level change is added: nothing in the checks asks for it, and clean takes
keep the benchmark's resemblance figures about the voice. The whole set is 9.9 minutes
of stored (trimmed) speech and builds in about 29 s on one core (synthesis, VAD checks
and imports); a cached set is reopened in 20 ms.

Only the bundled voice is used; hibari never downloads (``voice_path(...,
download_missing=False)``). Each take's noise seed is derived from the set's seed and
the prompt index, so a take is the same whether the set is built at once or grown later.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from voicebot.atomic_write import write_text_atomic
from voicebot.paths import user_dirs
from voicebot.training.dataset import SAMPLE_RATE, DatasetError, VoiceDataset
from voicebot.training.prompts import load_prompts

log = logging.getLogger(__name__)

VOICE = "heart"
MARKER = "stand_in.json"
MISSING = "bench adapt needs the test package hibari-tts (pip install --no-deps hibari-tts==0.2.1)"


class StandInUnavailableError(RuntimeError):
    """hibari-tts is not installed."""


def load_reader(threads: int = 1):
    """hibari's bundled voice, loaded once (raises ``StandInUnavailableError`` without it)."""
    try:
        import hibari
        from hibari.voices import voice_path
    except ImportError:
        raise StandInUnavailableError(MISSING) from None
    # download_missing=False: a voice that is not in the wheel is an error, never a fetch.
    return hibari.Hibari(voice=VOICE, model=voice_path(VOICE, download_missing=False),
                         threads=threads)


def hibari_version() -> str:
    try:
        import hibari
    except ImportError:
        raise StandInUnavailableError(MISSING) from None
    return hibari.__version__


def default_folder(seed: int = 0) -> Path:
    """Where the stand-in user's takes are cached (the user cache dir)."""

    return user_dirs().cache / "stand-in-user" / f"hibari-{hibari_version()}-{VOICE}-{seed}"


def build_stand_in(folder: Path | None = None, *, minutes: float | None = None,
                   count: int | None = None, seed: int = 0, language: str = "en",
                   checker=None, threads: int = 1,
                   on_take: Callable[[int, int], None] | None = None) -> VoiceDataset:
    """The stand-in user's dataset: prompts in order until ``count`` takes or ``minutes``
    of stored speech (no limit: every prompt). Reuses and grows a cached folder.

    ``on_take(done, total)`` is called after each prompt (for progress lines).
    """

    prompts = load_prompts(language)
    folder = Path(folder) if folder is not None else default_folder(seed)
    marker = {"reader": f"hibari-{hibari_version()}", "voice": VOICE, "seed": seed,
              "language": language, "sample_rate": SAMPLE_RATE}
    _reset_if_other(folder, marker)
    dataset = VoiceDataset(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / MARKER, json.dumps(marker, indent=1))
    reader = None
    rejected = {r.get("prompt_index") for r in dataset.rejected}
    limit = len(prompts) if count is None else min(count, len(prompts))
    for index, text in enumerate(prompts[:limit]):
        if minutes is not None and _minutes(dataset) >= minutes:
            break
        if dataset.take_for_prompt(index) is None and index not in rejected:
            if reader is None:
                reader = load_reader(threads)
                checker = checker or _checker()
            _read_take(dataset, reader, checker, index, text, seed)
        if on_take:
            on_take(index + 1, limit)
    return dataset


def take_ids(dataset: VoiceDataset, *, minutes: float | None = None,
             count: int | None = None) -> list[str]:
    """The stored takes in prompt order, cut at ``count`` takes / ``minutes`` of speech."""
    ordered = sorted(dataset.takes.values(),
                     key=lambda t: (t.prompt_index is None, t.prompt_index or 0, t.id))
    chosen, seconds = [], 0.0
    for take in ordered:
        if (count is not None and len(chosen) >= count) or \
                (minutes is not None and seconds >= 60 * minutes):
            break
        chosen.append(take.id)
        seconds += take.duration_s
    return chosen


def _read_take(dataset: VoiceDataset, reader, checker, index: int, text: str, seed: int
               ) -> None:
    from voicebot.audio.resample import StreamResampler

    # One noise seed per take (hibari's noise excitation), independent of build order.
    audio = reader(text, seed=seed * 100_003 + index)
    audio = StreamResampler(reader.sample_rate, SAMPLE_RATE).process(
        np.asarray(audio, np.float32), last=True)
    result = checker.check(audio, SAMPLE_RATE)
    if result.ok:
        dataset.add_take(f"p{index:04d}", text, result.trimmed, SAMPLE_RATE,
                         check=result.to_dict(), prompt_index=index,
                         source=f"hibari-{VOICE}")
    else:
        log.warning("stand-in take %d rejected: %s", index, result.summary)
        dataset.note_rejected(text, result.to_dict(), prompt_index=index,
                              source=f"hibari-{VOICE}")


def _checker():
    from voicebot.training.quality import TakeChecker

    return TakeChecker()


def _minutes(dataset: VoiceDataset) -> float:
    return sum(t.duration_s for t in dataset.takes.values()) / 60.0


def _reset_if_other(folder: Path, marker: dict) -> None:
    """A cached folder made by another reader, seed or rate is emptied, not mixed in."""
    file = folder / MARKER
    if not folder.exists():
        return
    try:
        same = json.loads(file.read_text(encoding="utf-8")) == marker
    except (OSError, ValueError):
        same = False
    if not same:
        if any(folder.iterdir()) and not file.is_file():
            raise DatasetError(f"{folder} holds files that are not a stand-in user's; "
                               "give another folder")
        shutil.rmtree(folder)
