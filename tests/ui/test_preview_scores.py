"""The Preview page tells the user, in plain words, how the trained voice scored."""

from __future__ import annotations

import json

from voicebot.ui.training_run_pages import PreviewPage


def test_preview_page_shows_the_best_checkpoints_scores(qtbot, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model_file.pth").write_bytes(b"weights")
    page = PreviewPage()
    qtbot.addWidget(page)
    page.set_model_dir(run)
    assert "Whisper understood" not in page.info_label.text()  # not scored yet
    (run / "best.json").write_text(json.dumps({
        "step": 1200, "roundtrip_wer": 0.15, "similarity": 0.81, "base_similarity": 0.52,
        "verdict": "Sounds closer to you than the starting voice."}))
    page.set_model_dir(run)
    text = page.info_label.text()
    assert "step 1200" in text and "understood 85% of the words" in text
    assert "0.81" in text and "starting voice: 0.52" in text
    assert "Sounds closer to you" in text
