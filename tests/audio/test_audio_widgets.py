import numpy as np
import pytest
from audio_test_utils import SPEECH_FILE, tone, wait_for
from PySide6.QtCore import QPointF

from voicebot.audio.capture import Capture
from voicebot.audio.resample import ASR_RATE
from voicebot.audio.ring_buffer import RingBuffer
from voicebot.audio.wav_io import read_wav
from voicebot.ui.widgets.level_meter import LevelMeter
from voicebot.ui.widgets.scope import AudioScope
from voicebot.ui.widgets.waveform import peak_decimate


@pytest.fixture
def scope(qtbot):
    widget = AudioScope()
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _feed(scope, ring, audio, block=267):
    for start in range(0, len(audio), block):  # ~60 Hz worth of 16 kHz audio per frame
        ring.write(audio[start:start + block])
        scope.update_display()


def _pixel_at(scope, plot, x, y):
    """The color drawn at view coordinates (x, y) of ``plot`` in a grab of the scope."""
    scene_point = plot.getViewBox().mapViewToScene(QPointF(x, y))
    widget_point = plot.mapTo(scope, plot.mapFromScene(scene_point))
    color = scope.grab().toImage().pixelColor(widget_point)
    return color.red() + color.green() + color.blue()


def test_the_spectrogram_shows_a_1khz_tone_in_the_1khz_band(qtbot, scope):
    ring = RingBuffer(ASR_RATE * 10)
    scope.set_source(ring, ASR_RATE)
    _feed(scope, ring, tone(1000, 2.0, ASR_RATE, amplitude=0.3))
    qtbot.wait(50)
    spectrogram = scope.spectrogram
    recent = spectrogram.frames_shown[-100:]  # the last second
    band = scope.mel.band_of(1000)
    loudest = np.argmax(recent.mean(axis=0))
    assert abs(loudest - band) <= 1
    assert recent[:, band].mean() > -20
    assert recent[:, scope.mel.band_of(4000)].mean() < -60
    assert recent[:, scope.mel.band_of(200)].mean() < -60
    # And on screen: bright at 1 kHz, dark at 4 kHz (checks the image's placement too).
    bright = _pixel_at(scope, spectrogram, -0.5, band + 0.5)
    dark = _pixel_at(scope, spectrogram, -0.5, scope.mel.band_of(4000) + 0.5)
    assert bright > 400 and dark < 100
    # Before the tone (older than 2 s) the picture is silent.
    assert _pixel_at(scope, spectrogram, -4.0, band + 0.5) < 100


def test_the_waveform_covers_the_last_seconds_and_keeps_peaks(qtbot, scope):
    ring = RingBuffer(ASR_RATE * 10)
    scope.set_source(ring, ASR_RATE)
    audio = np.zeros(ASR_RATE * 6, np.float32)
    audio[-ASR_RATE * 2] = 0.9  # a single-sample click 2 s ago
    _feed(scope, ring, audio)
    x, y = scope.waveform.curve.getData()
    pixels = scope.waveform.pixel_width()
    assert len(x) <= 2 * pixels  # decimated to the pixel width
    assert x.min() == pytest.approx(-5.0, abs=0.05) and x.max() == pytest.approx(0, abs=0.02)
    assert y.max() == pytest.approx(0.9)
    assert x[np.argmax(y)] == pytest.approx(-2.0, abs=0.02)


def test_peak_decimation_keeps_minimum_and_maximum_per_column():
    samples = np.zeros(1000, np.float32)
    samples[123] = 0.7
    samples[877] = -0.4
    lo, hi = np.zeros(10, np.float32), np.zeros(10, np.float32)
    assert peak_decimate(samples, 10, lo, hi) == 10
    assert hi[1] == pytest.approx(0.7) and lo[8] == pytest.approx(-0.4)
    assert np.count_nonzero(hi) == 1 and np.count_nonzero(lo) == 1


def test_level_meter_lights_the_clip_indicator_and_holds_it(qtbot):
    meter = LevelMeter()
    qtbot.addWidget(meter)
    meter.set_level(0.5, 0.2)
    assert not meter.clipping
    assert meter.peak_db == pytest.approx(-6.0, abs=0.1)
    meter.set_level(1.0, 0.7, clipped=True)
    assert meter.clipping
    meter.set_level(0.1, 0.05)  # quieter again: the light stays on for a while
    assert meter.clipping


def test_scope_readouts_and_clip_light_follow_the_capture_stats(qtbot, scope):
    ring = RingBuffer(ASR_RATE * 10)
    stats = {"device": "vmic (ALSA)", "samplerate": 44100.0, "channels": 2,
             "input_overflows": 0, "dropped_frames": 0, "clipped_samples": 0, "error": ""}
    scope.set_source(ring, ASR_RATE, stats=lambda: stats)
    _feed(scope, ring, tone(300, 0.2, ASR_RATE, 0.5))
    scope.update_text()
    assert "vmic (ALSA) · 44100 Hz · 2 ch" in scope.readout.text()
    assert "peak -6 dBFS" in scope.readout.text()
    assert not scope.meter.clipping
    stats["clipped_samples"] = 12
    stats["input_overflows"] = 3
    _feed(scope, ring, tone(300, 0.05, ASR_RATE, 0.5))
    scope.update_text()
    assert scope.meter.clipping
    assert "overflows 3" in scope.readout.text() and "CLIPPING" in scope.readout.text()
    stats["error"] = "the microphone vmic (ALSA) stopped working"
    scope.update_text()
    assert "stopped working" in scope.readout.text()


@pytest.mark.audio
def test_scope_draws_live_speech_from_the_virtual_microphone(qtbot, scope, virtual_audio):
    speech = read_wav(SPEECH_FILE)
    capture = Capture("vmic")
    scope.set_source(capture.ring(ASR_RATE), ASR_RATE, stats=capture.stats)
    with capture:
        scope.start()
        assert wait_for(lambda: capture.ring(ASR_RATE).frames_written > 1600, 2)
        virtual_audio.inject(speech.samples, speech.sample_rate)
        qtbot.waitUntil(lambda: virtual_audio.wait_mic_idle(0), timeout=5000)
        qtbot.wait(300)
        scope.stop()
    shown = scope.spectrogram.frames_shown[-int(speech.duration * 100):]
    assert shown.max() > -30  # speech energy on screen
    _, y = scope.waveform.curve.getData()
    assert np.abs(y).max() > 0.3
    assert scope.meter.hold_db > -20
    assert capture.input_overflows == 0
    scope.set_source(None)  # widgets may outlive the test; do not keep the capture alive
