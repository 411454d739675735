"""Speech synthesis: the Synthesizer protocol, voices, text front end (GUI-free).

Entry points:
- ``voices.load_voice(voice_id_or_path, VoiceOptions(...)) -> Synthesizer``;
- ``Synthesizer.stream(text, cancel, split_first=True)`` yields ``base.AudioChunk``s
  (float32 mono, with their sample rate) as soon as each is synthesised.

Modules, one job each:
- ``base``: the protocol, ``AudioChunk``, ``VoiceInfo``;
- ``text``: normalisation (numbers, dates, money, units, abbreviations, symbols) and
  lazy splitting into sentences and a short first clause;
- ``espeak``: IPA phonemes from the system espeak-ng library (ctypes);
- ``onnx_runtime``: sessions with explicit thread counts, no spinning, CUDA when present;
- ``piper`` + ``piper_split``: Piper/VITS ONNX voices, decoded in windows;
- ``coqui_checkpoint``, ``tacotron_parts``, ``tacotron_onnx``, ``mel_stream``,
  ``tacotron``: Tacotron2 + HiFi-GAN from Coqui checkpoints on torch or onnxruntime;
- ``random_voice``: random-weight Coqui models for tests and the benchmark;
- ``say`` and ``bench``: the ``voicebot say`` and ``voicebot bench tts`` commands.
"""
