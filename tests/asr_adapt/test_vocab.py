"""Vocabulary adaptation: an n-gram LM of the user's own text mixed into the general one."""

from __future__ import annotations

import json

import pytest

from voicebot.asr.adapt_vocab import adapted_lm, build_user_lm, gather_user_text
from voicebot.asr.recognizer import Hypothesis
from voicebot.asr.rescoring import Weights, rescore
from voicebot.lm.ngram import load_catalog_ngram, sentence_logprob
from voicebot.training.dataset import prompt_texts

USER_TEXT = ["Remind me to call Anneliese about the Kubernetes cluster",
             "Anneliese fixed the Kubernetes upgrade yesterday"]


@pytest.fixture(scope="module")
def general():
    return load_catalog_ngram()


def test_user_words_score_higher(general, tmp_path):
    lm = adapted_lm(general, build_user_lm(USER_TEXT, tmp_path / "user.arpa"))
    said = ["call", "anneliese", "about", "the", "kubernetes", "cluster"]
    assert not general.contains("anneliese")  # out of the general LM's vocabulary
    assert lm.contains("anneliese") and lm.contains("kubernetes")
    gain = sentence_logprob(lm, said) - sentence_logprob(general, said)
    assert gain > 5.0  # natural log: the user's sentence is far more likely
    # Everything else costs at most log(1 / 0.7) per word (the general LM's share).
    other = ["the", "weather", "is", "nice", "today"]
    loss = sentence_logprob(general, other) - sentence_logprob(lm, other)
    assert loss <= (len(other) + 1) * 0.36 + 1e-6


def test_rescoring_picks_the_users_word(general, tmp_path):
    lm = adapted_lm(general, build_user_lm(USER_TEXT, tmp_path / "user.arpa"))
    nbest = [Hypothesis("call and at least about the cluster", -4.0, n_tokens=8),
             Hypothesis("call Anneliese about the cluster", -4.2, n_tokens=7, engine_rank=1)]
    weights = Weights(acoustic=1.0, lm=0.3, word_bonus=0.0)
    assert rescore(nbest, general, weights).text != "call Anneliese about the cluster"
    assert rescore(nbest, lm, weights).text == "call Anneliese about the cluster"


def test_gathers_prompts_history_and_word_list(dataset, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("# names\nAnneliese\n\nKubernetes cluster\n", encoding="utf-8")
    turns = [{"user": "what time is it", "reply": "It is noon."}, {"user": ""}]
    texts = gather_user_text(prompt_texts(dataset), word_list=words, history=turns)
    assert texts[0] == "and mister john dashwood had then leisure to consider how much " \
        "there might be prudently in his power to do for them"
    assert len(texts) == 10 + 2 + 2
    assert texts[-4:] == ["what time is it", "It is noon.", "Anneliese", "Kubernetes cluster"]
    with pytest.raises(ValueError, match="no words"):
        build_user_lm([], tmp_path / "empty.arpa")


def test_saved_history_and_cli(dataset, tmp_path, capsys):
    from voicebot.cli import main
    from voicebot.lm.ngram import load_ngram
    from voicebot.pipeline.history import save_history

    save_history([{"user": "tell me about Zorblax", "reply": "Zorblax is a moon."}])
    words = tmp_path / "words.txt"
    words.write_text("Anneliese\n", encoding="utf-8")
    code = main(["train", "asr-vocab", "--data", str(dataset), "--out", str(tmp_path / "v"),
                 "--words", str(words)])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["texts"] == 10 + 2 + 1
    user = load_ngram(result["user_lm"])
    for word in ("zorblax", "anneliese", "dashwood"):
        assert user.contains(word)


def test_app_refresh_and_settings_lm(dataset):
    from voicebot.asr.adapt_vocab import (
        default_user_lm_path,
        ngram_with_user_lm,
        refresh_user_lm,
    )
    from voicebot.lm.ngram_build import InterpolatedLM
    from voicebot.pipeline.history import load_history, save_history
    from voicebot.settings import Settings

    asr = Settings().asr
    assert refresh_user_lm(load_history()) is None  # a fresh home: no text yet
    assert not isinstance(ngram_with_user_lm(asr), InterpolatedLM)
    save_history([{"user": "ask Anneliese", "reply": "Asking Anneliese."}])
    path = refresh_user_lm(load_history(), prompt_texts(dataset))
    assert path == default_user_lm_path() and path.is_file()
    lm = ngram_with_user_lm(asr)
    assert isinstance(lm, InterpolatedLM) and lm.contains("anneliese")
    asr.ngram_model = ""  # no general LM: nothing to interpolate with
    assert ngram_with_user_lm(asr) is None
