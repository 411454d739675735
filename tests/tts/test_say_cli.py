"""`voicebot say` writes speech to a WAV file and reports bad voices clearly."""

from __future__ import annotations

import pytest
import soundfile as sf

from voicebot.cli import main


def test_say_writes_a_wav_file(tmp_path, capsys):
    out = tmp_path / "hello.wav"
    assert main(["say", "Hello there. It is 7:30 and 21 degrees.", "-o", str(out)]) == 0
    info = sf.info(out)
    assert info.samplerate == 22050 and info.channels == 1
    assert 1.5 < info.duration < 8
    assert "wrote" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize("text", ["", "   ", "🙂🙂", "★ → ✓", "你好，世界。"])
def test_say_with_nothing_to_say_fails_in_one_line(tmp_path, capsys, text):
    out = tmp_path / "empty.wav"
    assert main(["say", text, "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing this voice can say" in err[0]
    assert not out.exists()


def test_other_scripts_are_skipped_not_spelled(tmp_path, caplog):
    """"Hello 你好 world" is said as "Hello world", never as "Chinese letter"."""
    from voicebot.tts.text import pieces

    with caplog.at_level("WARNING"):
        said = " ".join(p.text for p in pieces("Hello 你好 world.", latin_only=True))
    assert said == "Hello world."
    assert "skipped 2 characters" in caplog.text
    # Accented Latin letters are kept: "café" is still a word for an English voice.
    assert " ".join(p.text for p in pieces("Un café, s'il vous plaît.", latin_only=True)) \
        == "Un café, s'il vous plaît."


def test_say_rejects_an_unknown_voice(tmp_path, capsys):
    assert main(["say", "Hi.", "--voice", "no-such-voice", "-o", str(tmp_path / "x.wav")]) == 1
    assert "unknown voice 'no-such-voice'" in capsys.readouterr().err


def test_say_lists_voices(capsys):
    assert main(["say", "--list-voices"]) == 0
    assert "piper-en-us-joe-medium" in capsys.readouterr().out


@pytest.mark.audio
def test_say_plays_on_the_speaker(virtual_audio):
    import numpy as np

    start = virtual_audio.speaker_frames()
    assert main(["say", "Hello there, how are you?", "--output-device", "vspeaker"]) == 0
    played, _ = virtual_audio.speaker_audio(start)  # mono float32 at 48 kHz
    windows = played[: len(played) // 960 * 960].reshape(-1, 960)  # 20 ms each
    voiced = np.sqrt((windows ** 2).mean(axis=1)) > 0.01
    assert voiced.sum() * 0.02 > 0.6, "about a second of speech should reach the speaker"


def test_say_with_a_tacotron2_checkpoint_path(random_checkpoints, tacotron_voices,
                                              export_models_dir, monkeypatch, tmp_path):
    """A checkpoint folder (as the training tab writes) is a voice; the ONNX export made
    for the session's voices is reused from the conversion cache."""
    from voicebot.paths import MODELS_ENV

    monkeypatch.setenv(MODELS_ENV, str(export_models_dir))
    tts_dir, vocoder_dir = random_checkpoints
    out = tmp_path / "taco.wav"
    assert main(["say", "Hi.", "--voice", str(tts_dir), "--vocoder", str(vocoder_dir),
                 "-o", str(out)]) == 0
    info = sf.info(out)
    assert info.samplerate == 22050 and info.frames > 0  # random weights: noise, but audio
