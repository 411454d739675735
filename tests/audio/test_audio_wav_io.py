import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from audio_test_utils import SPEECH_FILE, tone

from voicebot.audio.wav_io import AtomicWavWriter, AudioFileError, read_wav, write_wav_atomic

# Some versions of Debian's pocketsphinx-testdata ship malformed WAVs (bad.wav, null.wav,
# awful.wav, evil.wav); the installed one does not, so these files are built here to
# cover the same failure kinds: broken headers, no data, lies about sizes and rates.


def _riff(fmt_rate=16_000, channels=1, bits=16, data=b"\0\0" * 100, data_size=None,
          fmt_size=16) -> bytes:
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, fmt_rate, fmt_rate * block_align, block_align,
                      bits)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", fmt_size) + fmt[:fmt_size]
            + b"data" + struct.pack("<I", len(data) if data_size is None else data_size)
            + data)
    return b"RIFF" + struct.pack("<I", len(body)) + body


MALFORMED = {
    "empty": b"",
    "truncated-header": _riff()[:20],
    "garbage": bytes(range(256)) * 4,
    "text": b"this is not audio at all\n" * 10,
    "no-samples": _riff(data=b""),
    "zero-rate": _riff(fmt_rate=0),
    "absurd-rate": _riff(fmt_rate=1),
    "zero-channels": _riff(channels=0),
    "bad-fmt-size": _riff(fmt_size=4),
    "data-size-lies": _riff(data=b"\1\0" * 10, data_size=0x7FFFFFF0),
    "odd-bits": _riff(bits=13),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_files_give_a_clear_error_or_sane_audio(tmp_path, name):
    path = tmp_path / f"{name}.wav"
    path.write_bytes(MALFORMED[name])
    try:
        wav = read_wav(path)
    except AudioFileError as exc:
        assert str(path) in str(exc)  # the message names the file...
        assert len(str(exc)) > len(str(path)) + 10  # ...and says what is wrong
        return
    # libsndfile salvages a file whose header lies about its data size, and reads 13-bit
    # PCM from its 16-bit container; what it returns must still be usable audio.
    assert name in ("data-size-lies", "odd-bits")
    assert len(wav.samples) > 0 and np.all(np.isfinite(wav.samples))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(AudioFileError, match="cannot open"):
        read_wav(tmp_path / "nope.wav")


def test_nan_and_inf_samples_are_sanitised_on_read(tmp_path):
    path = tmp_path / "float.wav"
    audio = np.array([0.1, np.nan, np.inf, -np.inf, 3.0, -0.2], np.float32)
    sf.write(path, audio, 16_000, subtype="FLOAT")
    wav = read_wav(path)
    assert wav.repaired == 4
    np.testing.assert_allclose(wav.samples, [0.1, 0.0, 1.0, -1.0, 1.0, -0.2], atol=1e-6)


def test_nan_and_inf_samples_are_sanitised_on_write(tmp_path):
    path = write_wav_atomic(tmp_path / "take.wav", np.array([np.nan, np.inf, 0.5]), 22_050)
    info = sf.info(path)
    assert (info.subtype, info.samplerate) == ("PCM_16", 22_050)
    np.testing.assert_allclose(read_wav(path).samples, [0.0, 32767 / 32768, 0.5], atol=1e-4)


def test_round_trip_is_16_bit_pcm(tmp_path):
    audio = tone(440, 0.5, 22_050)
    path = write_wav_atomic(tmp_path / "sub" / "take.wav", audio, 22_050)
    wav = read_wav(path)
    assert sf.info(path).subtype == "PCM_16"
    assert wav.sample_rate == 22_050
    np.testing.assert_allclose(wav.samples, audio, atol=1 / 32768 + 1e-7)


def test_reading_at_another_rate_resamples():
    wav = read_wav(SPEECH_FILE, sample_rate=22_050)
    original = read_wav(SPEECH_FILE)
    assert wav.sample_rate == 22_050
    assert abs(len(wav.samples) - len(original.samples) * 22_050 / 16_000) < 2


def test_a_failed_write_leaves_the_previous_file_and_no_temp_file(tmp_path):
    path = tmp_path / "take.wav"
    write_wav_atomic(path, tone(440, 0.2, 16_000), 16_000)
    before = path.read_bytes()
    with pytest.raises(RuntimeError), AtomicWavWriter(path, 16_000) as wav:
        wav.write(tone(880, 0.2, 16_000))
        raise RuntimeError("the recording was cancelled")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.wav"]


_SLOW_WRITER = """
import sys, time, numpy as np
from voicebot.audio.wav_io import AtomicWavWriter
with AtomicWavWriter(sys.argv[1], 16000) as wav:
    print("writing", flush=True)
    for _ in range(10000):
        wav.write(np.full(1600, 0.25, np.float32))
        time.sleep(0.001)
"""


def test_a_writer_killed_mid_write_never_leaves_a_half_file(tmp_path):
    path = tmp_path / "take.wav"
    old = tone(440, 0.3, 16_000)
    write_wav_atomic(path, old, 16_000)
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.3)  # well into the write
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    leftovers = [p for p in tmp_path.iterdir() if p.name != "take.wav"]
    assert leftovers and leftovers[0].stat().st_size > 0  # it really was mid-write
    np.testing.assert_allclose(read_wav(path).samples, old, atol=1e-4)  # old file intact
