"""The base voice taught by the embedded Piper voice: its parts, and that it learns.

The learning test builds a small base from real Piper speech on the CPU and checks
that the attention aligns (the diagonal score of ``voicebot.training.alignment`` rises
past 0.5 from the ~0.19 of an untrained model) and the mel loss falls, then loads the
result as a voice (Coqui's stock Tacotron2 with the zero-padded weights, through the
HiFi-GAN V1) and synthesises with it. It takes ~3.5 minutes of 2 busy cores.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from voicebot.training import alignment, base_voice, teacher_corpus
from voicebot.training.heldout import split_heldout
from voicebot.training.progress import EVENTS, PHASES, parse_line
from voicebot.training.tacotron_size import REDUCED, Sizes, pad_state, shrink, unpad_state


def test_teacher_sentences_are_deterministic_varied_and_leave_the_prompts_out():
    from voicebot.training.prompts import coverage_report, load_prompts

    first = teacher_corpus.sentences(400, seed=3)
    assert first == teacher_corpus.sentences(400, seed=3)
    assert first != teacher_corpus.sentences(400, seed=4)
    assert teacher_corpus.sentences(100, seed=3) == first[:100]  # a bigger corpus grows
    assert len(set(first)) == 400
    prompts = load_prompts("en")
    # The grammar could produce a prompt: banning one must remove it.
    assert prompts[0] not in teacher_corpus.sentences(50, exclude={prompts[0]})
    assert not {s.lower() for s in first} & {p.lower() for p in prompts}
    assert any(s.endswith("?") for s in first) and any(s.endswith("!") for s in first)
    assert any(ch.isdigit() for s in first for ch in s)
    words = [len(s.split()) for s in first]
    assert min(words) <= 4 and max(words) >= 20
    report = coverage_report(first)
    assert report["phoneme_coverage"] >= 0.9  # measured 0.96 on 3000 sentences


def test_split_heldout_keeps_every_tenth_take():
    items = list(range(25))
    train, held = split_heldout(items)
    assert held == [9, 19]
    assert train == [i for i in items if i not in held]
    assert split_heldout(list(range(9))) == (list(range(9)), [])


def test_diagonal_score_tells_an_alignment_from_a_spread_attention():
    steps, tokens = 60, 20
    diagonal = np.zeros((steps, tokens))
    diagonal[np.arange(steps), np.arange(steps) * tokens // steps] = 1.0
    uniform = np.full((steps, tokens), 1.0 / tokens)
    stuck = np.zeros((steps, tokens))
    stuck[:, 0] = 1.0
    assert alignment.diagonal_score(diagonal, tokens, steps) > 0.95
    assert 0.15 < alignment.diagonal_score(uniform, tokens, steps) < 0.25
    assert alignment.diagonal_score(stuck, tokens, steps) < 0.15


def test_a_reduced_model_padded_to_coqui_widths_computes_the_same():
    import torch
    from TTS.tts.configs.tacotron2_config import Tacotron2Config
    from TTS.tts.models import setup_model

    torch.manual_seed(0)
    config = Tacotron2Config(use_phonemes=False, r=5, double_decoder_consistency=False,
                             max_decoder_steps=40)
    small = shrink(setup_model(config), REDUCED)
    assert 7.7e6 < sum(p.numel() for p in small.parameters()) < 7.9e6
    for module in small.modules():  # batch-norm statistics that are not the identity
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.normal_()
            module.bias.data.normal_()
    full = setup_model(config)
    full.load_state_dict(pad_state(small.state_dict(), REDUCED, full.state_dict()))
    small.eval()
    full.eval()
    ids = torch.randint(1, 60, (1, 25))
    with torch.inference_mode():
        a, b = small.inference(ids), full.inference(ids)
    assert a["model_outputs"].shape == b["model_outputs"].shape
    assert torch.allclose(a["model_outputs"], b["model_outputs"], atol=1e-4)
    assert torch.allclose(a["alignments"], b["alignments"], atol=1e-5)
    back = unpad_state(full.state_dict(), REDUCED, small.state_dict())
    for key, value in small.state_dict().items():
        assert torch.equal(back[key], value), key
    with pytest.raises(ValueError):
        Sizes(encoder=255)


# A base small enough for CI: ~1.3 minutes of Piper speech in 36 sentences of at most
# 9 words, a narrower model than the real base (the same code path), 140 steps of 16
# sentences. Measured with this recipe: mean diagonal score of 10 steps 0.19 at the
# start, 0.29 by step 60, 0.50 by step 100, 0.63 by step 130; the untrimmed corpus
# (Piper's trailing silences kept) reached 0.50 only by step 135.
TEST_RECIPE = base_voice.BaseRecipe(
    minutes=1.6, max_steps=140, batch_size=16, r=5,
    sizes=Sizes(encoder=128, query=256, decoder=256, postnet=128), lr=2e-3,
    warmup_steps=30, ga_alpha=50.0, seed=1, max_decoder_steps=60, max_words=9)


@pytest.mark.timeout(600)
def test_a_small_base_learns_to_align_from_piper_speech_and_speaks(tmp_path, capsys):
    import torch

    torch.set_num_threads(1)
    code, folder = base_voice.build_base(base_voice.BuildOptions(
        recipe=TEST_RECIPE, device="cpu", threads=1, checkpoint_every=1000, preview=False))
    assert code == 0
    events = [e for e in map(parse_line, capsys.readouterr().out.splitlines()) if e]
    assert all(e["event"] in EVENTS and e.get("phase") == "base" for e in events)
    assert "base" in PHASES
    corpus = [e for e in events if e["event"] == "corpus"]
    assert corpus[-1]["done"] == corpus[-1]["total"] == TEST_RECIPE.sentences
    assert corpus[-1]["minutes"] > 1.0
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, TEST_RECIPE.max_steps + 1))

    # The attention learns to follow the text: from spread out (~0.19) to diagonal.
    scores = [e["align_score"] for e in steps]
    assert np.mean(scores[:5]) < 0.3
    assert np.mean(scores[-10:]) > alignment.ALIGNED, scores[-20:]
    # The mel loss falls. The model starts out predicting the corpus's mean frame
    # (tts_train.init_output_bias), so its first loss is the mels' own variance; by the
    # end it explains a fifth of it and more. Measured with the teacher's noise seeded
    # (the same in every run): 4.88 -> 3.49, 28% less. Unseeded, the corpus changed from
    # run to run and so did this: 35% less in one, 24% in another (a CI failure at the
    # 25% this test asked for then).
    decoder = [e["losses"]["decoder_loss"] for e in steps]
    assert np.mean(decoder[-10:]) < 0.8 * np.mean(decoder[:5]), decoder[::10]
    # The corpus carries the teacher's phoneme durations, so each step says how far the
    # attention is from where Piper said each phoneme, and it comes closer. Measured:
    # ~12.4 tokens over the first 5 steps, ~3.7 over the last 10 (3.5 when the recipe
    # guides the attention along the path).
    path = [e["path_error"] for e in steps]
    assert all(p is not None for p in path)
    assert np.mean(path[-10:]) < 0.5 * np.mean(path[:5]), path[::10]

    # Built, marked and found as the cached base of this recipe and teacher.
    assert base_voice.cached_base(folder) == folder
    marker = json.loads((folder / base_voice.MARKER).read_text())
    assert marker["steps"] == TEST_RECIPE.max_steps
    assert marker["teacher_sha256"] == base_voice.piper_sha()

    # It is a voice: Coqui's stock Tacotron2 loads the padded weights.
    from voicebot.tts.base import collect
    from voicebot.tts.voices import VoiceOptions, load_voice

    voice = load_voice(str(folder), VoiceOptions(engine="torch", device="cpu"))
    audio, rate = collect(voice.stream("The cat sat on the mat."))
    assert rate == voice.sample_rate
    assert audio.size > 0.3 * voice.sample_rate and np.isfinite(audio).all()
    assert np.abs(audio).max() > 0.01


def test_train_base_and_tts_arguments_are_checked_before_any_work(tmp_path):
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "voicebot", "train", *args],
                              capture_output=True, text=True, timeout=120)

    result = run("base", "--minutes", "0")
    assert result.returncode == 2 and "--minutes" in result.stderr
    result = run("base", "--max-steps", "0")
    assert result.returncode == 2 and "--max-steps" in result.stderr
    result = run("tts", "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "--data" in result.stderr
    result = run("tts", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--base-steps", "0")
    assert result.returncode == 2 and "--base-steps" in result.stderr
    assert not (tmp_path / "o").exists()
