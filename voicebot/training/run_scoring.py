"""A fine-tuning run scores its own checkpoints and keeps the best one as the user's voice.

At chosen checkpoints and at the end, the voice in the run folder says the held-out takes'
sentences (never trained on) and is scored by ``voicebot.training.voice_scores``:
``roundtrip_wer`` (Whisper transcribes it) and ``similarity`` (speaker-embedding cosine
with the user's held-out takes), next to the base voice's figures. The best checkpoint is
the one Whisper understands best; among those within ``WER_TIE`` of it, the one closest
to the user. Its inference weights are kept as ``best_model_file.pth`` while training
goes on, and at the end become the run's ``model_file.pth`` (what "Use this voice"
loads), the last step's being kept as ``last_model_file.pth``.

Why intelligibility first: a voice that sounds like the user but cannot be understood is
useless in conversation, and resemblance means little below ~50% understood words
(white noise scores 0.66 resemblance against a user, see voice_scores).

Files written: ``scores.json`` (the latest scoring, voice_scores.score_run's format, plus
``step``), ``best.json`` (the best step and its figures). Recognizer, speaker encoder and
the base voice load once per run, when the first scoring needs them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from voicebot.atomic_write import copy_atomic, write_json_atomic

log = logging.getLogger(__name__)

MODEL_FILE = "model_file.pth"
BEST_FILE = "best_model_file.pth"
LAST_FILE = "last_model_file.pth"
BEST_JSON = "best.json"
# Two checkpoints whose round-trip WERs differ by less than this are equally intelligible
# (one word in 20 on a held-out set of ~20 short sentences is within Whisper's noise).
WER_TIE = 0.05


def better(candidate: dict, best: dict | None) -> bool:
    """Is ``candidate`` (a scores dict) a better voice than ``best``?"""
    if best is None:
        return True
    wer, best_wer = candidate["roundtrip_wer"], best["roundtrip_wer"]
    if wer < best_wer - WER_TIE:
        return True
    if wer > best_wer + WER_TIE:
        return False
    return (candidate.get("similarity") or 0.0) > (best.get("similarity") or 0.0)


class RunScorer:
    """Scores a run folder's current voice on its held-out takes (main rank only)."""

    def __init__(self, out: Path, data: Path, heldout_ids: list[str], *,
                 base_voice: Path | None, device: str = "cpu",
                 emit: Callable[..., object] | None = None) -> None:
        self.out, self.data = Path(out), Path(data)
        self.heldout_ids = list(heldout_ids)
        self.base_voice = base_voice
        self.device = device
        self.emit = emit or (lambda *a, **k: None)
        self.best: dict | None = self._read_best()
        self.last_scored_step: int | None = None
        self._recognizer = None
        self._encoder = None

    def _read_best(self) -> dict | None:
        """A resumed run keeps the best it had found (if its weights are still there)."""
        try:
            best = json.loads((self.out / BEST_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return best if (self.out / BEST_FILE).is_file() else None

    def _engines(self):
        from voicebot.training import voice_scores

        if self._recognizer is None:
            self._recognizer = voice_scores.load_recognizer(device="cpu")
            self._encoder = voice_scores.load_speaker_encoder(device="cpu")
        return self._recognizer, self._encoder

    def score(self, step: int) -> dict | None:
        """Score the run's current ``model_file.pth``; never raises (training goes on)."""
        from voicebot.training.voice_scores import score_run

        try:
            recognizer, encoder = self._engines()
            result = score_run(self.out, self.data, base_voice=self.base_voice,
                               take_ids=self.heldout_ids, device=self.device,
                               recognizer=recognizer, encoder=encoder)
        except Exception as exc:  # a broken scorer must not lose the training
            log.warning("scoring step %d failed: %s", step, exc, exc_info=True)
            self.emit("warning", message=f"could not score the voice at step {step}: {exc}")
            return None
        self.last_scored_step = step
        result = {**result, "step": step}
        write_json_atomic(self.out / "scores.json", result, indent=1)
        if better(result, self.best):
            copy_atomic(self.out / MODEL_FILE, self.out / BEST_FILE)
            self.best = {k: result[k] for k in ("step", "roundtrip_wer", "similarity",
                                                "base_similarity", "base_roundtrip_wer",
                                                "verdict")}
            write_json_atomic(self.out / BEST_JSON, self.best, indent=1)
        self.emit("scores", step=step, roundtrip_wer=result["roundtrip_wer"],
                  similarity=result["similarity"], base_similarity=result["base_similarity"],
                  base_roundtrip_wer=result["base_roundtrip_wer"], verdict=result["verdict"],
                  best_step=self.best["step"] if self.best else None,
                  sentences=len(self.heldout_ids))
        return result

    def finish(self, final_step: int) -> int | None:
        """Make the best scored checkpoint the run's voice; returns its step."""
        if self.best is None:
            return None
        best_step = int(self.best["step"])
        if best_step != final_step and (self.out / BEST_FILE).is_file():
            copy_atomic(self.out / MODEL_FILE, self.out / LAST_FILE)
            copy_atomic(self.out / BEST_FILE, self.out / MODEL_FILE)
            log.info("the voice of step %d scored best; it is the run's voice (step %d "
                     "kept as %s)", best_step, final_step, LAST_FILE)
        return best_step
