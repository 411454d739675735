"""`voicebot transcribe` and `voicebot asr-eval` end to end (models shared in-process)."""

from __future__ import annotations

import json

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
    assert "cannot read audio" in captured.err


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
