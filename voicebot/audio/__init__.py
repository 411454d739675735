"""Capture, ring buffer, playback, resampling, streaming STFT/mel, VAD, WAV I/O (GUI-free).

Modules (import them directly; this package imports nothing so it stays cheap):
``ring_buffer`` (lock-free 2N ring), ``devices`` (list/choose by name, rates, errors),
``capture`` (mic -> mono 16 kHz / 22.05 kHz rings), ``player`` (streamed playback with
fade-out stop and first-sample time), ``resample`` (soxr streaming), ``features``
(streaming STFT and log-mel), ``wav_io`` (atomic 16-bit writes, validating reads) and
``virtual_device`` (a private PulseAudio microphone/speaker pair for tests and demos).
"""
