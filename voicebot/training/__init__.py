"""Voice adaptation: datasets, prompts, take checks, fine-tuning processes (GUI-free).

- ``prompts``: the prompt sets in ``assets/prompts`` and their phoneme/diphone coverage
  (``python -m voicebot.training.prompts``).
- ``quality``: ``TakeChecker().check(samples, rate) -> TakeCheck`` (clipping, SNR, level,
  length, speech present via Silero VAD, cut-offs; trims silence at the edges).
- ``mic_check``: ``analyze(quiet, speaking) -> MicCheck`` with advice.
- ``recorder``: ``TakeRecorder`` records takes at 22.05 kHz from a capture device.
- ``dataset``: ``VoiceDataset`` (LJSpeech layout in ``user_dirs().voices/<name>``, takes
  written atomically, ``summary()``), ``trained_voices()``.
- ``importer``: ``import_folder(src, dataset, checker) -> ImportReport``.
- ``tts_train`` / ``cli``: ``voicebot train tts --data DIR --out DIR [--resume]
  [--base CKPT] [--max-steps N]``, a separate process talking the ``progress`` protocol
  (JSON lines on stdout).
- ``teacher_corpus`` / ``base_voice``: the base voice taught by the built-in Piper voice
  (``voicebot train base``), cached per machine; ``tacotron_size``: the reduced
  Tacotron2 and its zero-padding to Coqui's widths; ``alignment``: the diagonal score;
  ``heldout``: ``split_heldout(items)`` (every 10th take is never trained on).
- ``bench``: training steps/s beside Coqui's Trainer (``voicebot bench train``).
"""
