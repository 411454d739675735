"""What a model folder of each kind must contain, checked before it is installed.

The checks are about structure (the files an engine opens), not about loading the
model: they are cheap, and they catch the usual mistakes (the wrong folder level of an
unzipped archive, a Whisper folder without its tokenizer, a Piper voice without its
JSON config).
"""

from __future__ import annotations

from pathlib import Path

from voicebot.models.errors import InvalidModelError

_TRANSFORMERS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json",
                         "pytorch_model.bin", "pytorch_model.bin.index.json")


def _has(folder: Path, *names: str) -> bool:
    return any((folder / name).is_file() for name in names)


def _glob(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if p.is_file())


def _vosk(folder: Path) -> list[str]:
    problems = []
    if not _has(folder, "am/final.mdl"):
        problems.append("am/final.mdl (the acoustic model)")
    if not _has(folder, "conf/model.conf", "conf/mfcc.conf"):
        problems.append("conf/model.conf or conf/mfcc.conf")
    if not (_has(folder, "graph/HCLG.fst") or (_has(folder, "graph/HCLr.fst")
            and _has(folder, "graph/Gr.fst"))):
        problems.append("graph/HCLG.fst, or graph/HCLr.fst with graph/Gr.fst")
    return problems


def _whisper(folder: Path) -> list[str]:
    if _has(folder, "model.bin"):  # CTranslate2
        problems = [] if _has(folder, "config.json") else ["config.json"]
        if not _has(folder, "tokenizer.json", "vocabulary.txt", "vocabulary.json"):
            problems.append("tokenizer.json or vocabulary.txt")
        return problems
    problems = [] if _has(folder, "config.json") else ["config.json"]
    if not _has(folder, *_TRANSFORMERS_WEIGHTS):
        problems.append("model.bin (CTranslate2) or model.safetensors (transformers)")
    if not _has(folder, "tokenizer.json", "vocab.json"):
        problems.append("tokenizer.json or vocab.json")
    return problems


def _chat(folder: Path) -> list[str]:
    if _glob(folder, "*.gguf"):
        return []
    problems = [] if _has(folder, "config.json") else ["config.json"]
    if not _has(folder, *_TRANSFORMERS_WEIGHTS):
        problems.append("model.safetensors (or a .gguf file)")
    if not _has(folder, "tokenizer.json", "tokenizer.model", "vocab.json"):
        problems.append("tokenizer.json")
    return problems


def _onnx_voice(folder: Path) -> list[str]:
    voices = _glob(folder, "*.onnx")
    if not voices:
        return ["a .onnx voice file"]
    if not any(_has(folder, v.name + ".json") for v in voices) and not _has(folder,
                                                                              "config.json"):
        return [f"{voices[0].name}.json (the voice's config)"]
    return []


def _coqui(folder: Path) -> list[str]:
    problems = [] if _has(folder, "config.json") else ["config.json"]
    if not (_has(folder, "model_file.pth", "model.pth", "best_model.pth")
            or _glob(folder, "checkpoint_*.pth") or _glob(folder, "*.pth.tar")):
        problems.append("model_file.pth (or another .pth checkpoint)")
    return problems


def _ngram(folder: Path) -> list[str]:
    if _glob(folder, "*.lm.bin") or _glob(folder, "*.arpa") or _glob(folder, "*.arpa.gz") \
            or _glob(folder, "*.binary") or _glob(folder, "*.klm"):
        return []
    return ["an n-gram LM (.lm.bin, .arpa, .arpa.gz, .binary or .klm)"]


def _vad(folder: Path) -> list[str]:
    return [] if _glob(folder, "*.onnx") else ["a .onnx file"]


_CHECKS = {
    "asr-vosk": _vosk, "asr-whisper": _whisper, "chat-lm": _chat,
    "tts-onnx-voice": _onnx_voice, "tts-tacotron2": _coqui, "vocoder-hifigan": _coqui,
    "ngram-lm": _ngram, "vad": _vad,
}


def structure_problems(kind: str, folder: Path) -> list[str]:
    """What is missing for a model of ``kind`` in ``folder`` (empty when it looks right)."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    check = _CHECKS.get(kind)
    if check is None:
        raise InvalidModelError(f"unknown model kind '{kind}'; one of {', '.join(_CHECKS)}")
    return check(folder)


def check_structure(kind: str, folder: Path) -> None:
    problems = structure_problems(kind, folder)
    if problems:
        raise InvalidModelError(f"{folder} is not a complete {kind} model: missing "
                                + "; ".join(problems))
