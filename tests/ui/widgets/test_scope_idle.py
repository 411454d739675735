"""The live plots cost nothing without new audio or off screen, and their frequency
labels are spaced apart."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QLabel, QTabWidget

from voicebot.audio.features import StreamingLogMel
from voicebot.audio.resample import ASR_RATE
from voicebot.audio.ring_buffer import RingBuffer
from voicebot.ui.widgets.scope import AudioScope
from voicebot.ui.widgets.spectrogram import MIN_TICK_GAP_BANDS, frequency_ticks


@pytest.fixture
def tabs(qtbot):
    """A scope on the first tab of a shown window, started on a ring."""
    window = QTabWidget()
    qtbot.addWidget(window)
    scope = AudioScope()
    window.addTab(scope, "scope")
    window.addTab(QLabel("other"), "other")
    window.resize(900, 500)
    window.show()
    qtbot.waitExposed(window)
    ring = RingBuffer(ASR_RATE * 10)
    scope.set_source(ring, ASR_RATE)
    scope.start()
    return window, scope, ring


def _speech_like(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.2 * rng.standard_normal(int(seconds * ASR_RATE))).astype(np.float32)


def test_no_new_audio_draws_nothing(tabs):
    _, scope, ring = tabs
    ring.write(_speech_like(0.5))
    assert scope.update_display()
    drawn = scope.redraws
    for _ in range(20):
        assert not scope.update_display()
    assert scope.redraws == drawn
    ring.write(_speech_like(0.1))
    assert scope.update_display() and scope.redraws == drawn + 1


def test_timers_run_only_while_the_scope_is_on_screen(qtbot, tabs):
    window, scope, ring = tabs
    assert scope.display_timer.isActive() and scope.text_timer.isActive()
    window.setCurrentIndex(1)  # another tab: the scope is hidden
    qtbot.waitUntil(lambda: not scope.display_timer.isActive())
    assert not scope.text_timer.isActive()
    ring.write(_speech_like(1.0))
    drawn = scope.redraws
    qtbot.wait(150)  # ~9 frames' worth at 60 Hz: none may draw
    assert scope.redraws == drawn
    window.setCurrentIndex(0)
    qtbot.waitUntil(lambda: scope.display_timer.isActive())
    qtbot.waitUntil(lambda: scope.redraws > drawn)  # and it catches up by itself


def test_a_minimised_window_stops_the_timers(qtbot, tabs):
    window, scope, _ = tabs
    window.showMinimized()
    qtbot.waitUntil(lambda: window.isMinimized())
    qtbot.waitUntil(lambda: not scope.display_timer.isActive())
    window.showNormal()
    qtbot.waitUntil(lambda: scope.display_timer.isActive())


def test_stop_wins_over_visibility(qtbot, tabs):
    window, scope, _ = tabs
    scope.stop()
    assert not scope.display_timer.isActive()
    window.setCurrentIndex(1)
    window.setCurrentIndex(0)
    qtbot.wait(20)
    assert not scope.display_timer.isActive()


def test_started_while_hidden_waits_for_the_first_show(qtbot):
    scope = AudioScope()
    qtbot.addWidget(scope)
    scope.set_source(RingBuffer(ASR_RATE), ASR_RATE)
    scope.start()
    assert not scope.display_timer.isActive()
    scope.show()
    qtbot.waitExposed(scope)
    assert scope.display_timer.isActive()


def test_frequency_labels_are_well_spaced(qtbot, tabs):
    _, scope, _ = tabs
    mel = StreamingLogMel(ASR_RATE)
    for pixels_per_band in (0.0, 1.0, 2.5, 6.0):
        ticks = frequency_ticks(mel, pixels_per_band)
        bands = [band for band, _ in ticks]
        gaps = np.diff(bands)
        # An 80-pixel plot has room for two labels inside it; taller ones for three.
        assert len(ticks) >= (2 if pixels_per_band == 1.0 else 3), ticks
        assert (gaps >= MIN_TICK_GAP_BANDS).all(), ticks
        if pixels_per_band:
            assert (gaps * pixels_per_band >= 24).all()
    labels = [label for _, label in frequency_ticks(mel)]
    assert "250" not in labels or "500" not in labels  # they overlapped
    # 8 kHz is the top edge at 16 kHz, where its label was cut in half: the highest label
    # shown sits inside the plot.
    assert labels[-1] == "4k"
    assert all(band <= mel.n_mels - 2 for band, _ in frequency_ticks(mel))
    # On the widget, at its real height: no two labels closer than 24 px.
    plot = scope.spectrogram.getPlotItem()
    ticks = plot.getAxis("left")._tickLevels[0]
    per_band = plot.getViewBox().height() / mel.n_mels
    assert (np.diff([band for band, _ in ticks]) * per_band >= 24).all()


def _noise(seconds: float, level: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(int(seconds * ASR_RATE))).astype(np.float32)


def _frames(scope, ring, block: np.ndarray, count: int, clock: list[float]) -> int:
    """Feed ``count`` 33 ms display frames of ``block`` each; how many drew."""
    drawn = scope.redraws
    for _ in range(count):
        ring.write(block)
        clock[0] += 1 / 30
        scope.update_display()
    return scope.redraws - drawn


def test_digital_silence_is_not_redrawn(tabs):
    """A muted microphone (all zeros) leaves the picture as it is: once the plots show
    only silence, no frame draws, though new audio arrives every frame."""
    _, scope, ring = tabs
    clock = [0.0]
    scope.clock = lambda: clock[0]
    silence = np.zeros(ASR_RATE // 30, np.float32)
    _frames(scope, ring, silence, 30 * 6, clock)  # fill the 5 s on screen with silence
    assert _frames(scope, ring, silence, 60, clock) == 0
    # Speech wakes it at once, and every frame draws while it is on screen.
    assert _frames(scope, ring, _speech_like(1 / 30), 1, clock) == 1
    assert _frames(scope, ring, silence, 30, clock) == 30


def test_quiet_noise_is_drawn_a_few_times_a_second(tabs):
    from voicebot.ui.widgets.scope import QUIET_HZ, QUIET_PEAK

    _, scope, ring = tabs
    clock = [0.0]
    scope.clock = lambda: clock[0]
    quiet = _noise(1 / 30, QUIET_PEAK / 8)  # a quiet room: peaks well under QUIET_PEAK
    assert np.abs(quiet).max() < QUIET_PEAK
    _frames(scope, ring, quiet, 30 * 6, clock)
    drawn = _frames(scope, ring, quiet, 60, clock)  # two seconds
    assert 2 * QUIET_HZ - 1 <= drawn <= 2 * QUIET_HZ + 1
    loud = _noise(1 / 30, 0.1)
    assert _frames(scope, ring, loud, 30, clock) == 30  # speech: every frame
