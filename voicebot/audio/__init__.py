"""Capture, ring buffer, playback, resampling, streaming STFT/mel, VAD, WAV I/O (GUI-free)."""
