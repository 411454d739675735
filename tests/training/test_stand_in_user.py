"""The stand-in user (hibari's bundled voice) reads prompts into a real voice dataset."""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest

from voicebot.training import stand_in_user
from voicebot.training.dataset import SAMPLE_RATE, VoiceDataset
from voicebot.training.prompts import load_prompts


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch, tmp_path):
    """hibari must use its bundled voice: any network fetch fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"hibari tried to download: {args[:1]}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setenv("HIBARI_HOME", str(tmp_path / "empty-hibari-cache"))


def test_takes_pass_the_take_checks_and_are_stored_like_recordings(tmp_path, checker):
    from voicebot.audio.wav_io import read_wav

    folder = tmp_path / "stand-in"
    dataset = stand_in_user.build_stand_in(folder, count=6, checker=checker)
    prompts = load_prompts()
    assert sorted(dataset.takes) == [f"p{i:04d}" for i in range(6)]
    assert dataset.rejected == []
    reloaded = VoiceDataset(folder)  # what the trainer and the wizard read back
    for index in range(6):
        take = reloaded.take_for_prompt(index)
        assert take.text == prompts[index] and take.check["ok"] and take.source == "hibari-heart"
        audio = read_wav(reloaded.wav_path(take.id))
        assert audio.sample_rate == SAMPLE_RATE
        # Stored trimmed to the speech (+0.15 s margins), as the wizard stores takes; the
        # stored file passes the checks again, as a real recording's would.
        assert abs(len(audio.samples) / SAMPLE_RATE - take.duration_s) < 0.01
        again = checker.check(audio.samples, SAMPLE_RATE)
        assert again.ok, again.reasons
        assert 1.0 < again.speech_s < 6.0 and -40 < again.speech_rms_dbfs < -15


def test_cached_set_grows_without_redoing_takes_and_limits_by_minutes(tmp_path, checker):
    from voicebot.audio.wav_io import read_wav

    folder = tmp_path / "stand-in"
    stand_in_user.build_stand_in(folder, count=3, checker=checker)
    first = (folder / "wavs" / "p0000.wav").stat().st_mtime_ns
    dataset = stand_in_user.build_stand_in(folder, count=5, checker=checker)
    assert len(dataset.takes) == 5
    assert (folder / "wavs" / "p0000.wav").stat().st_mtime_ns == first  # reused, not redone
    # A minutes limit stops at the first take that reaches it, in prompt order.
    chosen = stand_in_user.take_ids(dataset, minutes=0.1)
    seconds = [dataset.takes[take_id].duration_s for take_id in chosen]
    assert chosen == [f"p{i:04d}" for i in range(len(chosen))]
    assert sum(seconds[:-1]) < 6.0 <= sum(seconds)
    assert stand_in_user.take_ids(dataset, count=4) == [f"p{i:04d}" for i in range(4)]
    # Another seed is another set of takes: the cached folder is emptied, not mixed.
    seed0 = read_wav(folder / "wavs" / "p0000.wav").samples
    other = stand_in_user.build_stand_in(folder, count=1, seed=1, checker=checker)
    assert sorted(other.takes) == ["p0000"]
    seed1 = read_wav(folder / "wavs" / "p0000.wav").samples
    n = min(len(seed0), len(seed1))
    assert not np.allclose(seed0[:n], seed1[:n], atol=1e-3)


def test_missing_package_is_one_line(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "hibari", None)  # import hibari -> ImportError
    with pytest.raises(stand_in_user.StandInUnavailableError) as error:
        stand_in_user.build_stand_in(tmp_path / "x", count=1)
    assert str(error.value) == stand_in_user.MISSING and "\n" not in str(error.value)
    assert "hibari-tts" in str(error.value)


def test_a_folder_of_other_files_is_never_emptied(tmp_path):
    from voicebot.training.dataset import DatasetError

    folder = tmp_path / "my-recordings"
    folder.mkdir()
    (folder / "metadata.csv").write_text("a|real take|real take\n")
    with pytest.raises(DatasetError):
        stand_in_user.build_stand_in(folder, count=1)
    assert (folder / "metadata.csv").is_file()
