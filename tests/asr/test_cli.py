"""`voicebot transcribe` and `voicebot asr-eval` end to end (models shared in-process)."""

from __future__ import annotations

import json

import pytest

from voicebot.cli import main


def test_transcribe_json_nbest(capsys, utterances):
    audio = next(u.audio for u in utterances if u.audio.name == "001.wav")
    assert main(["transcribe", str(audio), "--nbest", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["file"] == str(audio)
    assert "clubs" in out["text"].lower()
    assert 1 <= len(out["hypotheses"]) <= 3
    best = out["hypotheses"][0]
    assert {"acoustic_score", "lm_score", "total_score", "words"} <= set(best)


def test_transcribe_plain_text_and_bad_file(capsys, utterances, tmp_path):
    audio = next(u.audio for u in utterances if u.audio.name == "003.wav")
    bad = tmp_path / "not-audio.wav"
    bad.write_text("nope")
    assert main(["transcribe", str(audio), str(bad), "--nbest", "1"]) == 1
    captured = capsys.readouterr()
    assert "clubs" in captured.out.lower()
    assert "cannot transcribe" in captured.err


def test_asr_eval_on_a_manifest(capsys, utterances, tmp_path):
    manifest = tmp_path / "dev.tsv"
    picked = [u for u in utterances if u.audio.name in ("001.wav", "003.wav")]
    manifest.write_text("# audio\treference\n" + "".join(
        f"{u.audio}\t{u.reference}\n" for u in picked), encoding="utf-8")
    assert main(["asr-eval", "--manifest", str(manifest), "--nbest", "3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary) == {"wer", "wer_1best", "wer_rescored", "rtf", "n_utts", "n_words"}
    assert main(["asr-eval", "--manifest", str(manifest), "--nbest", "3", "--json",
                 "--tune"]) == 0
    tuned = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["tuned"]
    assert set(tuned) == {"lm_weight", "word_bonus", "wer"}
    assert tuned["wer"] <= summary["wer_rescored"]
    assert summary["n_utts"] == 2 and summary["n_words"] == 6
    assert summary["wer_rescored"] <= 0.34 and summary["rtf"] > 0
    assert main(["asr-eval", "--manifest", str(tmp_path / "missing.tsv")]) == 1


def _bad_files(folder):
    """name -> (path, words the one-line reason must hold), each made with real writers."""
    import struct

    import numpy as np
    import soundfile as sf

    empty = folder / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    nan = folder / "nan.wav"
    sf.write(nan, np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    tiny = folder / "tiny.wav"
    sf.write(tiny, np.zeros(8, np.int16), 16000)
    absurd = folder / "absurd-rate.wav"  # 10 samples, header says 2 MHz: 5 microseconds
    sf.write(absurd, np.zeros(10, np.int16), 16000)
    data = bytearray(absurd.read_bytes())
    data[24:28] = struct.pack("<I", 2_000_000)
    data[28:32] = struct.pack("<I", 4_000_000)
    absurd.write_bytes(bytes(data))
    return {"empty": (empty, "no audio"), "nan": (nan, "NaN"), "tiny": (tiny, "too short"),
            "absurd-rate": (absurd, "sample rate"),
            "missing": (folder / "nowhere.wav", "no such file")}


@pytest.mark.parametrize("case", ["empty", "nan", "tiny", "absurd-rate", "missing"])
def test_transcribe_refuses_bad_files_in_one_line(capsys, tmp_path, case):
    path, reason = _bad_files(tmp_path)[case]
    assert main(["transcribe", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0] and "Traceback" not in captured.err


@pytest.mark.parametrize("command", [["transcribe", "--model", "nosuch"],
                                     ["chat", "--model", "nosuch", "hello"]])
def test_unknown_model_is_one_line_and_exit_2(capsys, command, utterances):
    audio = str(next(u.audio for u in utterances if u.audio.name == "001.wav"))
    argv = [*command, audio] if command[0] == "transcribe" else command
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("voicebot: unknown model 'nosuch'")
