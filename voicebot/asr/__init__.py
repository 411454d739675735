"""Speech recognition: the Recognizer protocol, engines, n-best and rescoring (GUI-free).

Public API (heavy modules load only when used):
- ``recognizer``: ``Recognizer`` protocol, ``Hypothesis``, ``Partial``, ``WordTiming``.
- ``factory``: ``create_recognizer(engine, model_id, nbest=, on_partial=)``,
  ``recognizer_from_settings(settings.asr)``, ``ngram_from_settings(settings.asr)``.
- ``whisper_engine``: ``WhisperRecognizer`` (streaming, LocalAgreement), ``load_whisper``;
  ``whisper_onnx.OnnxWhisperModel`` (the CPU model on ONNX Runtime, graphs from
  ``whisper_onnx_export``), ``whisper_model.WhisperModel`` (torch, for CUDA and training),
  ``whisper_search`` (the greedy and beam search both use); ``whisper_convert`` turns the
  packaged CTranslate2 weights into a transformers folder, cached by the model store.
- ``vosk_engine``: ``VoskRecognizer``, ``load_vosk_model``.
- ``rescoring``: ``rescore(nbest, lm, weights) -> RescoredNBest``, ``Weights``,
  ``TUNED_WEIGHTS``, ``tune_weights``. N-gram LMs are in ``voicebot.lm.ngram`` and
  ``voicebot.lm.ngram_build``.
- ``wer`` (text normalized by ``voicebot.text.scoring``), ``evaluate`` (manifests, the
  pocketsphinx test recordings), ``audio_input`` (what audio the engines accept).
- ``commands`` (`voicebot transcribe`, `voicebot asr-eval`), ``bench`` (`voicebot bench asr`).

Typical turn::

    recognizer = recognizer_from_settings(settings.asr, on_partial=show_partial)
    for chunk in microphone_chunks():          # mono float32, 16 kHz
        recognizer.feed(chunk)
    result = rescore(recognizer.finish(), lm, Weights.from_settings(settings.asr))
    result.text, result.hypotheses             # chosen text; all alternatives with scores
"""

from voicebot.asr.recognizer import Hypothesis, Partial, Recognizer, WordTiming

__all__ = ["Hypothesis", "Partial", "Recognizer", "WordTiming"]
