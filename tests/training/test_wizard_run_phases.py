"""The train page reads the progress protocol's phases: the one-time base voice, then the
user's voice, each with its own loss curve; unknown keys and events are ignored."""

from __future__ import annotations

import json

import pytest

from voicebot.training.progress import event, parse_line


@pytest.fixture
def page(qtbot):
    from voicebot.ui.training_run_pages import TrainPage

    widget = TrainPage()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def feed(page, name, **fields):
    """One event as the trainer writes it: a JSON line, parsed as the app parses it."""
    page.on_event(parse_line(json.dumps(event(name, **fields))))


def test_base_then_fine_tune_phases_are_shown_and_plotted_apart(page):
    checkpoints, samples = [], []
    page.checkpoint_ready.connect(checkpoints.append)
    page.sample_ready.connect(samples.append)
    feed(page, "corpus", phase="base", done=120, total=600, minutes=6.5, eta_s=300)
    assert page.phase_label.text() == "Building the base voice (one time)…"
    assert "120 of 600 sentences" in page.rate_label.text()
    assert "ETA 5 min 00 s" in page.rate_label.text()
    assert (page.progress_bar.value(), page.progress_bar.maximum()) == (120, 600)
    feed(page, "start", phase="base", max_steps=50, start_step=0, device="cpu",
         precision="fp32", takes=600, minutes=32.0, base="piper-taught")
    for step, loss in ((1, 3.0), (2, 2.5)):
        feed(page, "step", phase="base", step=step, losses={"loss": loss},
             steps_per_s=0.5, eta_s=96, total_eta_s=156, align_score=0.61,
             future_key="ignored")
    assert page.base_steps == [1, 2] and page.base_losses == [3.0, 2.5]
    assert page.steps == []  # the user's curves start empty
    assert "(all: 2 min 36 s)" in page.rate_label.text()
    assert "alignment 0.61" in page.rate_label.text()
    # The base's checkpoint and preview are not the user's voice: not offered.
    feed(page, "checkpoint", phase="base", step=2, path="/base/checkpoint_2.pth",
         model_path="/base")
    feed(page, "sample", phase="base", step=2, path="/base/samples/step_2.wav")
    feed(page, "done", phase="base", step=2, checkpoint="/base/checkpoint_2.pth")
    assert checkpoints == [] and samples == []
    assert "base voice is ready" in page.status_label.text()
    feed(page, "shiny_new_event", phase="fine-tune", whatever=1)  # unknown: no harm
    feed(page, "start", phase="fine-tune", max_steps=30, start_step=0, device="cpu",
         precision="fp32", takes=80, minutes=5.1, base="base voice")
    assert page.phase_label.text() == "Learning your voice…"
    feed(page, "step", phase="fine-tune", step=1, steps_per_s=0.5, eta_s=58,
         losses={"loss": 1.2, "decoder_loss": 0.5, "postnet_loss": 0.4,
                 "stopnet_loss": 0.3})
    assert page.steps == [1] and page.losses["decoder_loss"] == [0.5]
    xs, ys = page.base_curve.getData()
    assert list(xs) == [1, 2] and list(ys) == [3.0, 2.5]
    assert list(page.curves["loss"].getData()[1]) == [1.2]
    assert page.progress_bar.maximum() == 30 and "step 1 / 30" in page.rate_label.text()
    feed(page, "checkpoint", phase="fine-tune", step=1, path="/run/checkpoint_1.pth",
         model_path="/run")
    assert checkpoints == ["/run"]


def test_a_run_without_phases_plots_as_before(page):
    feed(page, "start", max_steps=10, start_step=0, device="cpu", precision="fp32",
         takes=7, minutes=0.3, base="scratch")
    feed(page, "step", step=1, losses={"loss": 2.0}, steps_per_s=1.0, eta_s=9)
    assert page.phase_label.text() == "" and page.steps == [1] and not page.base_steps
