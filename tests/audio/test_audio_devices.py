import threading
import time

import numpy as np
import pytest
import sounddevice as sd
from audio_test_utils import tone, wait_for

from voicebot.audio import devices, portaudio_life
from voicebot.audio.capture import Capture
from voicebot.audio.devices import DeviceLostError, NoDeviceError, choose_device, list_devices
from voicebot.audio.player import Player
from voicebot.audio.resample import ASR_RATE


@pytest.mark.audio
def test_devices_are_listed_with_host_api_and_rates(virtual_audio):
    inputs = {d.name: d for d in list_devices("input", with_rates=True)}
    outputs = {d.name: d for d in list_devices("output")}
    assert "vmic" in inputs and "vspeaker" in outputs
    mic = inputs["vmic"]
    assert mic.host_api == "ALSA"
    assert {16_000, 44_100, 48_000} <= set(mic.supported_rates)
    assert mic.label == "vmic (ALSA)"


@pytest.mark.audio
def test_a_device_is_found_by_name_or_label(virtual_audio):
    assert choose_device("vmic", "input").device.name == "vmic"
    assert choose_device("vspeaker (ALSA)", "output").device.name == "vspeaker"
    assert choose_device("", "input").fallback_reason == ""


@pytest.mark.audio
def test_an_unknown_name_falls_back_to_the_default_and_says_so(virtual_audio):
    choice = choose_device("USB headset that was unplugged", "input")
    assert choice.device.max_input_channels > 0
    assert "USB headset that was unplugged" in choice.fallback_reason
    assert "not available" in choice.fallback_reason


def _fake_portaudio(monkeypatch, names):
    host_apis = [{"name": "ALSA"}]
    raw = [{"name": n, "hostapi": 0, "max_input_channels": 2 if n.endswith("mic") else 0,
            "max_output_channels": 0 if n.endswith("mic") else 2,
            "default_samplerate": 48_000.0} for n in names]
    monkeypatch.setattr(sd, "query_hostapis", lambda: host_apis)
    def query_devices(device=None, kind=None):
        if kind is not None:  # no default device configured
            raise sd.PortAudioError("Error querying device -1")
        return raw

    monkeypatch.setattr(sd, "query_devices", query_devices)
    monkeypatch.setattr(sd.default, "device", [-1, -1])


def test_choice_by_name_survives_index_changes(monkeypatch):
    _fake_portaudio(monkeypatch, ["usb mic", "laptop mic", "speaker"])
    assert choose_device("laptop mic", "input").device.index == 1
    # A device plugged in before it shifts every index; the name still finds it.
    _fake_portaudio(monkeypatch, ["hdmi", "bluetooth mic", "usb mic", "laptop mic", "speaker"])
    assert choose_device("laptop mic", "input").device.index == 3


def test_no_input_device_is_a_clear_error(monkeypatch):
    _fake_portaudio(monkeypatch, ["speaker"])
    with pytest.raises(NoDeviceError, match="no audio microphone"):
        choose_device("", "input")


@pytest.mark.audio
def test_an_unsupported_rate_falls_back_and_is_resampled(virtual_audio, monkeypatch):
    real_check = sd.check_input_settings

    def only_44k1(*args, samplerate=None, **kwargs):  # a device that takes one rate only
        if samplerate != 44_100:
            raise sd.PortAudioError("Invalid sample rate")
        return real_check(*args, samplerate=samplerate, **kwargs)

    monkeypatch.setattr(devices.sd, "check_input_settings", only_44k1)
    capture = Capture("vmic", samplerate=16_000)
    assert capture.samplerate == 44_100
    reader = capture.ring(ASR_RATE).reader()
    with capture:
        assert wait_for(lambda: capture.ring(ASR_RATE).frames_written > 1600, 2)
        virtual_audio.inject(tone(500, 0.3, 16_000), 16_000)
        virtual_audio.wait_mic_idle(2)
        time.sleep(0.1)
    got = reader.read()
    spectrum = np.abs(np.fft.rfft(got))
    assert abs(np.argmax(spectrum) * ASR_RATE / len(got) - 500) < 5  # still 500 Hz at 16 kHz


@pytest.mark.audio
def test_devices_vanishing_mid_stream_stop_cleanly_and_report(virtual_audio):
    errors = []
    capture = Capture("vmic", on_error=errors.append).start()
    player = Player("vspeaker", on_error=errors.append).open()
    try:
        player.play(tone(440, 5.0, 22_050), 22_050)
        assert wait_for(lambda: capture.ring(ASR_RATE).frames_written > 4000, 2)
        vanished_at = time.monotonic()
        virtual_audio.kill_daemon()  # the sound server dies: both devices disappear
        assert wait_for(lambda: capture.error is not None, 3), "capture did not notice"
        assert time.monotonic() - vanished_at < 2
        assert isinstance(capture.error, DeviceLostError)
        assert "vmic" in str(capture.error) and "choose another" in str(capture.error)
        # The player notices on its own, and then refuses to play instead of hanging.
        assert wait_for(lambda: player.error is not None, 3), "player did not notice"
        assert isinstance(player.error, DeviceLostError) and "vspeaker" in str(player.error)
        with pytest.raises(DeviceLostError):
            player.play(tone(440, 0.05, 22_050), 22_050)
        assert wait_for(lambda: len(errors) == 2, 1)  # each reported once, via on_error
        assert capture.error in errors and player.error in errors
        done = threading.Event()

        def close_both():
            capture.stop()
            player.close()
            done.set()

        threading.Thread(target=close_both, daemon=True).start()
        assert done.wait(5), "stopping streams on a vanished device hung"
    finally:
        virtual_audio.restart()
    # The user picks a device again: a new capture works once the device is back.
    with Capture("vmic") as again:
        assert wait_for(lambda: again.ring(ASR_RATE).frames_written > 1600, 3)
        assert again.error is None


@pytest.mark.audio
def test_reinitialising_portaudio_keeps_names_resolvable(virtual_audio):
    before = choose_device("vmic", "input").device
    portaudio_life.reinitialize()
    after = choose_device("vmic", "input").device
    assert before.name == after.name == "vmic"


def test_a_sound_server_that_dies_while_starting_is_started_again(virtual_audio, monkeypatch):
    """pulseaudio sometimes aborts in the dynamic loader while it starts (a CI run's
    restart, 2026-12-07); that fault cannot be made on demand, so the first start is made
    to fail as it did and the second is the real one."""
    from voicebot.audio import virtual_device

    real = virtual_device.VirtualAudio._launch_daemon_once
    tries = []

    def dies_once(self, timeout):
        tries.append(timeout)
        if len(tries) == 1:
            raise virtual_device._ExitedAtStartError(
                "Inconsistency detected by ld.so: dl-open.c: 581: dl_open_worker_begin")
        return real(self, timeout)

    monkeypatch.setattr(virtual_device.VirtualAudio, "_launch_daemon_once", dies_once)
    virtual_audio.restart()
    assert len(tries) == 2
    assert virtual_audio._daemon is not None and virtual_audio._daemon.poll() is None
