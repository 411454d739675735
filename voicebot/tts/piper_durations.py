"""A Piper voice that says how long it held each phoneme.

A Piper (VITS) graph predicts a duration per phoneme id, rounds it up (its one ``Ceil``
node) and expands the phonemes' frames by it; each frame is one hop (256 samples at
22.05 kHz), the hop of the V1 mel, so the durations are the alignment of the audio with
its phonemes, exact to the frame (checked: sum(durations) * 256 == len(audio)).

The teacher corpus uses it: a Tacotron2 taught by the voice can then be told where its
attention belongs (``voicebot.training.attention_targets``). The durations come from the
same run as the audio, since the graph draws them with noise (noise_w): a second run
would time the phonemes differently.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voicebot.models.conversions import converted
from voicebot.tts import onnx_runtime

CONVERSION_NAME = "piper-durations"
CONVERSION_VERSION = "1"
DURATIONS_FILE = "with-durations.onnx"


@dataclass(frozen=True)
class Spoken:
    audio: np.ndarray  # float32 mono at the voice's rate
    phonemes: str  # one character per phoneme id that was spoken (no pads, BOS, EOS)
    frames: np.ndarray  # (len(phonemes),) int frames of each phoneme, its pad included;
    # the first also holds the frames of the start symbol, the last those of the end one


def durations_output(graph) -> str:
    """The tensor of rounded-up durations: the output of the graph's only Ceil node."""
    ceils = [node for node in graph.node if node.op_type == "Ceil"]
    if len(ceils) != 1:
        raise ValueError(f"expected one Ceil node (the durations), found {len(ceils)}: "
                         "not a Piper graph this code can read durations from")
    return ceils[0].output[0]


def _add_output(model_path: Path, out_dir: Path) -> None:
    import onnx  # needed once per voice

    model = onnx.load(str(model_path))
    name = durations_output(model.graph)
    model.graph.output.append(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    onnx.save(model, str(out_dir / DURATIONS_FILE))


class DurationVoice:
    """Whole-sentence synthesis with per-phoneme frame counts (CPU; the teacher only)."""

    def __init__(self, voice, model_path: Path, threads: int = 2) -> None:
        """``voice``: the loaded ``PiperVoice`` of ``model_path`` (its phonemizer and
        id map are used); the graph with the extra output is cut once and cached."""
        model_path = Path(model_path)
        folder = converted(f"piper-{model_path.stem}", CONVERSION_NAME, [model_path],
                           functools.partial(_add_output, model_path),
                           version=CONVERSION_VERSION)
        self.voice = voice
        self.sample_rate = voice.sample_rate
        self._session = onnx_runtime.session(folder / DURATIONS_FILE, threads=threads,
                                             device="cpu")
        self._char_of = {ids[0]: char for char, ids in voice.config.phoneme_id_map.items()
                         if len(ids) == 1}

    def speak(self, text: str) -> Spoken:
        """Say normalized ``text`` in one call."""
        ids = self.voice.phoneme_ids(self.voice.phonemes(text))
        audio, durations = self._session.run(None, self.voice.feeds(ids))
        audio = np.asarray(audio, np.float32).reshape(-1)
        return Spoken(audio, *phoneme_frames(ids, durations.reshape(-1), self._char_of))


def phoneme_frames(ids: list[int], durations: np.ndarray, char_of: dict[int, str]
                   ) -> tuple[str, np.ndarray]:
    """(phoneme characters, frames each) from Piper's id layout ``^ _ p1 _ p2 _ ... pn _ $``:
    each phoneme takes its own frames and its pad's; the start symbol and its pad go to
    the first phoneme, the end symbol to the last."""
    durations = np.rint(durations).astype(np.int64)
    chars, frames = [], []
    carry = 0
    for position, token in enumerate(ids):
        char = char_of.get(token, "")
        if char in ("^", "_", "$") or not char:
            if frames and char != "^":
                frames[-1] += durations[position]
            else:
                carry += durations[position]
            continue
        chars.append(char)
        frames.append(durations[position] + carry)
        carry = 0
    if not chars:
        raise ValueError("no phonemes were spoken")
    return "".join(chars), np.asarray(frames, np.int64)
