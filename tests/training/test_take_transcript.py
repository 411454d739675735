"""Whisper's check of a take: real recorded speech against its prompt, and the dataset
leaving a misread take out of training."""

from __future__ import annotations

import pytest

from voicebot.audio.wav_io import read_wav
from voicebot.training.dataset import VoiceDataset, read_metadata
from voicebot.training.take_transcript import (
    TakeTranscript,
    WordDiff,
    align,
    check_take,
    compare,
    take_recognizer,
)

OTHER_PROMPT = "The kettle whistled while we argued about the weather."  # prompts[0]


def test_words_are_compared_after_normalising():
    same = compare("Mr. Dashwood drew 10 of clubs!", "mister dashwood drew ten of clubs")
    assert (same.errors, same.words, same.diffs, same.misread) == (0, 6, [], False)
    assert same.differences() == ""
    one = compare("Please put the blue jug back on the top shelf.",
                  "Please put the blue mug back on top shelf")
    assert one.errors == 2 and not one.misread  # 2 of 10 words: Whisper's own noise level
    assert one.diffs == [WordDiff("jug", "mug"), WordDiff("the", "")]
    assert one.differences() == "“jug” heard as “mug”; missing “the”"


def test_a_dropped_ending_is_not_a_different_word():
    heard = compare("The kettle whistled while we argued about the weather.",
                    "the kettle whistle while we argue about the weather")
    assert heard.errors == 0 and heard.diffs == []
    assert compare("four queens", "four queen").errors == 0
    assert compare("the cat", "then cats").errors == 2  # short words must match exactly
    assert compare("plain words", "planet words").errors == 1  # not a mere ending


def test_alignment_marks_insertions_deletions_and_runs():
    assert align(["a", "b", "c"], ["a", "c", "d"]) == [("a", "a"), ("b", ""), ("c", "c"),
                                                       ("", "d")]
    result = compare("the quick brown fox", "the quack brawn fox jumped")
    assert result.diffs == [WordDiff("quick brown", "quack brawn"), WordDiff("", "jumped")]
    assert result.errors == 3 and result.misread
    assert compare("two words", "").diffs == [WordDiff("two words", "")]
    assert compare("", "").errors == 0


def test_transcript_round_trips_through_json_data():
    result = compare("ten of clubs", "seven of hearts")
    data = result.to_dict()
    assert data["misread"] and data["wer"] == pytest.approx(2 / 3, abs=1e-3)
    back = TakeTranscript.from_dict(data)
    assert back == result and back.misread


@pytest.fixture(scope="module")
def recognizer():
    return take_recognizer()


def test_real_speech_of_the_prompt_passes_and_of_another_sentence_is_flagged(
        utterances, recognizer):
    wav, text = next(u for u in utterances if "amiable himself" in u[1])
    audio = read_wav(wav, sample_rate=22050)  # as the wizard stores takes
    right = check_take(recognizer, text, audio.samples, audio.sample_rate)
    assert not right.misread, right
    assert right.errors <= 1
    wrong = check_take(recognizer, OTHER_PROMPT, audio.samples, audio.sample_rate)
    assert wrong.misread and wrong.wer > 0.6
    assert "amiable" in wrong.heard.lower()
    flagged = wrong.differences(most=10)
    assert "kettle" in flagged and "weather" in flagged


def test_takes_are_heard_by_the_whisper_the_app_loaded(recognizer):
    """A recogniser of its own (one utterance at a time each) on the same model."""
    again = take_recognizer(recognizer)
    assert again is not recognizer and again.model is recognizer.model
    assert not again.streaming and again.nbest == 1


def test_a_misread_take_is_left_out_of_training_until_redone_or_kept(utterances, speech):
    dataset = VoiceDataset.create("checked")
    dataset.add_take("p0000", OTHER_PROMPT, speech, 22050, prompt_index=0)
    dataset.add_take("p0001", utterances[0][1], speech, 22050, prompt_index=1)
    dataset.set_transcript("p0000", compare(OTHER_PROMPT, utterances[0][1]).to_dict())
    dataset.set_transcript("p0001", compare(utterances[0][1], utterances[0][1]).to_dict())
    assert dataset.takes["p0000"].misread and not dataset.takes["p0001"].misread
    assert [r[0] for r in read_metadata(dataset.metadata_file)] == ["p0001"]
    summary = dataset.summary()
    assert summary.takes == 1 and summary.misread == 1 and summary.unchecked == 0
    again = VoiceDataset(dataset.folder)  # the flag is stored with the take
    assert again.takes["p0000"].misread
    assert again.takes["p0000"].transcript["diffs"]
    again.keep_anyway("p0000")
    assert [r[0] for r in read_metadata(again.metadata_file)] == ["p0000", "p0001"]
    # Recorded again: the new take has no verdict yet and is trained on.
    again.add_take("p0000", OTHER_PROMPT, speech, 22050, prompt_index=0)
    assert again.takes["p0000"].transcript is None and again.summary().unchecked == 1
