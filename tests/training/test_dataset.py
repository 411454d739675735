"""The LJSpeech dataset on disk: durable takes, crash safety, summary, import."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import soundfile as sf

from voicebot.audio.wav_io import AtomicWavWriter, read_wav, write_wav_atomic
from voicebot.training.dataset import (
    DatasetError,
    VoiceDataset,
    check_voice_name,
    list_voices,
    read_metadata,
    voices_dir,
)
from voicebot.training.importer import import_folder


def test_takes_are_stored_in_ljspeech_layout_and_reload(utterances, checker):
    dataset = VoiceDataset.create("Anna's voice")
    assert dataset.folder == voices_dir() / "Anna's voice"
    for index, (wav, text) in enumerate(utterances[:3]):
        data = read_wav(wav)  # 16 kHz: stored resampled to 22.05 kHz
        result = checker.check(data.samples, data.sample_rate)
        dataset.add_take(f"p{index:04d}", text, result.trimmed, data.sample_rate,
                         check=result.to_dict(), prompt_index=index)
    dataset.note_rejected("five five", {"ok": False, "problems": ["clipped"]}, prompt_index=9)
    info = sf.info(dataset.wav_path("p0001"))
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    rows = read_metadata(dataset.metadata_file)
    assert [r[0] for r in rows] == ["p0000", "p0001", "p0002"]
    line = dataset.metadata_file.read_text().splitlines()[1]
    assert line == f"p0001|{utterances[1][1]}|{utterances[1][1]}"

    again = VoiceDataset(dataset.folder)
    assert set(again.takes) == {"p0000", "p0001", "p0002"}
    assert again.take_for_prompt(2).text == utterances[2][1]
    assert len(again.rejected) == 1
    summary = again.summary(min_minutes=0.1, min_takes=3)
    assert summary.takes == 3 and summary.rejected == 1
    assert 0.1 < summary.minutes < 0.4
    assert summary.ready and summary.missing() == ""
    assert 0 < summary.phoneme_coverage < 1 and 0 < summary.diphone_coverage < 1
    short = again.summary()  # the real minimum: minutes of speech
    assert not short.ready and "more minutes" in short.missing()
    assert list_voices() == ["Anna's voice"]


def test_redo_replaces_a_take_and_remove_deletes_it(speech):
    dataset = VoiceDataset.create("redo")
    dataset.add_take("p0000", "first try", speech[:22050], 22050, prompt_index=0)
    dataset.add_take("p0000", "second | try\n", speech, 22050, prompt_index=0)
    assert dataset.takes["p0000"].text == "second try"  # no column separator inside
    assert read_wav(dataset.wav_path("p0000")).duration == pytest.approx(len(speech) / 22050)
    dataset.remove_take("p0000")
    assert not dataset.wav_path("p0000").exists()
    assert read_metadata(dataset.metadata_file) == []


@pytest.mark.parametrize("name", ["", "  ", "../up", "a/b", ".hidden", "x" * 70])
def test_bad_voice_names_are_refused(name):
    with pytest.raises(DatasetError):
        check_voice_name(name)


def test_bad_take_ids_and_empty_text_are_refused(speech):
    dataset = VoiceDataset.create("ids")
    with pytest.raises(DatasetError):
        dataset.add_take("../escape", "text", speech, 22050)
    with pytest.raises(DatasetError):
        dataset.add_take("p1", "  ", speech, 22050)
    assert not any((dataset.folder.parent).glob("escape*"))


def test_an_interrupted_write_leaves_the_earlier_takes_alone(speech):
    dataset = VoiceDataset.create("interrupted")
    dataset.add_take("p0000", "kept", speech, 22050)
    before = dataset.wav_path("p0000").read_bytes()
    with pytest.raises(RuntimeError), AtomicWavWriter(dataset.wav_path("p0000"), 22050) as w:
        w.write(speech[:1000])
        raise RuntimeError("the recorder crashed")
    assert dataset.wav_path("p0000").read_bytes() == before
    assert VoiceDataset(dataset.folder).takes["p0000"].text == "kept"
    assert not list(dataset.wavs.glob("*.tmp"))


def test_killing_the_recorder_mid_take_never_damages_earlier_takes(speech, tmp_path):
    """A separate process saves two takes, then dies (kill -9) while writing the third."""
    folder = voices_dir() / "killed"
    np.save(tmp_path / "speech.npy", speech)
    script = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        from voicebot.audio.wav_io import AtomicWavWriter
        from voicebot.training.dataset import VoiceDataset
        speech = np.load({str(tmp_path / "speech.npy")!r})
        ds = VoiceDataset.create("killed")
        ds.add_take("p0000", "one", speech, 22050)
        ds.add_take("p0001", "two", speech, 22050)
        writer = AtomicWavWriter(ds.wav_path("p0002"), 22050)
        print("writing", flush=True)
        while True:  # a recording that is still going on
            writer.write(speech[:2205])
            time.sleep(0.01)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    dataset = VoiceDataset(folder)
    assert sorted(dataset.takes) == ["p0000", "p0001"]
    for take_id in ("p0000", "p0001"):
        assert np.allclose(read_wav(dataset.wav_path(take_id)).samples, speech, atol=1e-4)
    assert not dataset.wav_path("p0002").exists()  # only a temporary file was written
    assert [r[0] for r in read_metadata(dataset.metadata_file)] == ["p0000", "p0001"]
    # Saving the next take works as if nothing happened.
    dataset.add_take("p0002", "three", speech, 22050)
    assert len(VoiceDataset(folder).takes) == 3


def _tree(root):
    return {p for p in root.rglob("*")}


def test_import_ljspeech_folder_reports_every_reject(tmp_path, utterances, checker, speech):
    source = tmp_path / "ljspeech"
    rows = []
    for number, (wav, text) in enumerate(utterances[5:8]):
        write_wav_atomic(source / "wavs" / f"good_{number}.wav", read_wav(wav).samples, 16000)
        rows.append(f"good_{number}|{text}|{text}")
    write_wav_atomic(source / "wavs" / "empty_text.wav", speech, 22050)
    write_wav_atomic(source / "wavs" / "silent.wav", np.zeros(3 * 22050, np.float32), 22050)
    write_wav_atomic(tmp_path / "outside.wav", speech, 22050)
    rows += ["missing_wav|some text|some text", "empty_text||", "silent|quiet please|",
             "../outside|escape attempt|escape attempt", "/etc/passwd|absolute|absolute"]
    (source / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    dataset = VoiceDataset.create("imported")
    outside_before = _tree(tmp_path) - _tree(dataset.folder)

    report = import_folder(source, dataset, checker)

    assert len(report.accepted) == 3
    reasons = dict(report.rejected)
    assert "missing" in reasons["missing_wav"]
    assert "empty" in reasons["empty_text"]
    assert "No speech" in reasons["silent"]
    assert "unsafe" in reasons["../outside"] and "unsafe" in reasons["/etc/passwd"]
    assert ("good_0", "resampled from 16000 Hz") in report.notes
    assert "rejected 5" in report.text()
    assert _tree(tmp_path) - _tree(dataset.folder) == outside_before  # nothing written outside
    reloaded = VoiceDataset(dataset.folder)
    assert len(reloaded.takes) == 3 and len(reloaded.rejected) == 1  # the silent one
    for take in reloaded.takes.values():
        assert sf.info(reloaded.wav_path(take.id)).samplerate == 22050


def test_import_wav_txt_pairs_with_bad_files(tmp_path, utterances, checker):
    source = tmp_path / "pairs"
    source.mkdir()
    wav, text = utterances[1]
    audio = read_wav(wav, sample_rate=44100).samples
    sf.write(source / "stereo.wav", np.stack([audio, audio], axis=1), 44100)
    (source / "stereo.txt").write_text(text)
    sf.write(source / "lowrate.wav", read_wav(wav, sample_rate=8000).samples, 8000)
    (source / "lowrate.txt").write_text(text)
    (source / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" * 4)
    (source / "corrupt.txt").write_text("words")
    sf.write(source / "no_transcript.wav", audio, 44100)
    (source / "orphan.txt").write_text("a transcript with no audio")
    sf.write(source / "clipped.wav", np.clip(audio * 10, -1, 1), 44100)
    (source / "clipped.txt").write_text(text)
    dataset = VoiceDataset.create("pairs")

    report = import_folder(source, dataset, checker)

    assert len(report.accepted) == 1
    reasons = dict(report.rejected)
    assert "too low" in reasons["lowrate.wav"]
    assert "unreadable" in reasons["corrupt.wav"]
    assert "no transcript" in reasons["no_transcript.wav"]
    assert "no recording" in reasons["orphan.txt"]
    assert "clipped" in reasons["clipped.wav"]
    assert ("stereo.wav", "2 channels mixed to mono") in report.notes
    stored = dataset.takes[report.accepted[0]]
    assert stored.text == text and stored.source == "stereo.wav"


def test_import_of_a_missing_or_empty_folder_is_a_report(tmp_path):
    dataset = VoiceDataset.create("nothing")
    assert "not a folder" in import_folder(tmp_path / "nope", dataset).rejected[0][1]
    (tmp_path / "empty").mkdir()
    assert "no metadata.csv" in import_folder(tmp_path / "empty", dataset).rejected[0][1]
