"""The teacher's phoneme durations as the student's attention path."""

import numpy as np
import pytest

from voicebot.training.attention_targets import (
    frame_positions,
    guided_attention_loss,
    step_centres,
)


def test_frames_of_matched_phonemes_point_at_their_tokens():
    positions = frame_positions("abc", np.array([2, 4, 2]), "abc")
    assert positions.shape == (8,)
    assert np.all(np.diff(positions) >= 0)
    # Each phoneme's frames stay within half a token of its own token.
    assert np.all(np.abs(positions[:2] - 0) <= 0.5)
    assert np.all(np.abs(positions[2:6] - 1) <= 0.5)
    assert np.all(np.abs(positions[6:] - 2) <= 0.5)


def test_phonemes_one_tokenizer_dropped_or_added_do_not_shift_the_rest():
    # The teacher says a syllabic mark the student's tokenizer discards ("n̩" -> "n"),
    # and the student has a stress mark the teacher did not time.
    teacher, student = "kɪʔn̩ ænd", "kˈɪʔn ænd"
    frames = np.full(len(teacher), 3)
    positions = frame_positions(teacher, frames, student)
    d_teacher = teacher.index("d")
    d_student = student.index("d")
    assert np.all(np.abs(positions[3 * d_teacher:3 * d_teacher + 3] - d_student) <= 0.5)
    assert np.all(np.diff(positions) >= 0)
    assert positions.max() <= len(student) - 1


def test_a_decoder_step_is_centred_on_the_mean_of_its_frames():
    positions = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3], np.float32)
    centres = step_centres(positions, r=5, steps=3)
    assert centres.tolist() == pytest.approx([0.6, 2.0, 3.0])  # the padding step keeps 3


def test_the_path_loss_prefers_the_teachers_path_and_falls_back_to_the_diagonal():
    import torch
    from TTS.tts.layers.losses import GuidedAttentionLoss

    loss = guided_attention_loss(GuidedAttentionLoss(sigma=0.4))
    steps, tokens = 10, 10
    ilens, olens = torch.tensor([tokens]), torch.tensor([steps])
    # The teacher lingers on token 0 for half the sentence, then rushes through.
    centres = torch.tensor([[0, 0, 0, 0, 0, 1, 3, 5, 7, 9]], dtype=torch.float32)

    def attention(path):
        att = torch.zeros(1, steps, tokens)
        att[0, torch.arange(steps), torch.as_tensor(path)] = 1.0
        return att

    diagonal = attention(list(range(tokens)))
    teachers = attention(centres[0].long())
    loss.centres = centres
    assert loss(teachers, ilens, olens) < 0.2 * loss(diagonal, ilens, olens)
    # Without centres (NaN: a user's take), it is Coqui's diagonal prior exactly.
    loss.centres = torch.full((1, steps), float("nan"))
    assert loss(diagonal, ilens, olens) == pytest.approx(
        GuidedAttentionLoss(sigma=0.4)(diagonal, ilens, olens).item())
