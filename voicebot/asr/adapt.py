"""Recognition adapted to the user: the recogniser with the settings' adapter, and
``asr-eval --adapter`` (WER before and after on the same utterances).

The settings field is ``AsrSettings.adapter`` (path of an adapter folder, "" = off); it
is read with getattr so this works before that field exists.
"""

from __future__ import annotations

import logging

from voicebot.asr.factory import recognizer_from_settings
from voicebot.asr.lora import AdapterError, load_whisper_with_adapter, read_adapter
from voicebot.asr.recognizer import PartialCallback, Recognizer

log = logging.getLogger(__name__)


def settings_adapter(asr_settings) -> str:
    """The adapter the settings switch on, or "" (none, or one made for another model)."""

    path = getattr(asr_settings, "adapter", "") or ""
    if not path or asr_settings.engine != "whisper":
        return ""
    try:
        info = read_adapter(path)
    except AdapterError as exc:
        log.warning("recognition adapter ignored: %s", exc)
        return ""
    if info.base_model != asr_settings.model:
        log.warning("recognition adapter %s is for %s, not %s; ignored", path,
                    info.base_model, asr_settings.model)
        return ""
    return path


def create_adapted_recognizer(model_id: str, adapter: str, *, nbest: int = 5,
                              on_partial: PartialCallback | None = None, device: str = "auto",
                              streaming: bool = True, word_timings: bool = False,
                              threads: int = 1) -> Recognizer:
    """A Whisper recogniser whose model has the adapter merged in."""
    from voicebot.asr.whisper_engine import WhisperRecognizer

    return WhisperRecognizer(load_whisper_with_adapter(model_id, adapter, device, threads),
                             nbest=nbest, streaming=streaming, word_timings=word_timings,
                             on_partial=on_partial)


def recognizer_from_settings_adapted(asr_settings, on_partial: PartialCallback | None = None,
                                     device: str = "auto", threads: int = 1) -> Recognizer:
    """``factory.recognizer_from_settings`` plus the settings' adapter when it is on."""

    adapter = settings_adapter(asr_settings)
    if not adapter:
        return recognizer_from_settings(asr_settings, on_partial, device, threads)
    return create_adapted_recognizer(asr_settings.model, adapter, nbest=asr_settings.nbest,
                                     on_partial=on_partial, device=device, threads=threads)


def eval_with_adapter(args, utterances, setup) -> dict:
    """WER of the plain and the adapted recogniser on the same utterances.

    ``setup(args)`` is asr-eval's own (recogniser, lm, weights, nbest) builder; the
    adapted recogniser differs only in its model.
    """
    from voicebot.asr.evaluate import evaluate

    info = read_adapter(args.adapter)
    if args.model is None:
        args.model = info.base_model
    recognizer, lm, weights, nbest = setup(args)
    before = evaluate(recognizer, utterances, lm, weights, nbest)
    adapted = create_adapted_recognizer(args.model, args.adapter, nbest=nbest,
                                        device=args.device, streaming=False)
    after = evaluate(adapted, utterances, lm, weights, nbest)
    return {"adapter": str(info.path), "base_model": info.base_model,
            "before": before.summary(), "after": after.summary(),
            "texts": [{"reference": b.utterance.reference, "before": b.rescored.text,
                       "after": a.rescored.text}
                      for b, a in zip(before.results, after.results, strict=True)]}
