"""N-gram LMs: a hand-computed ARPA model and the real pocketsphinx trigram LM."""

from __future__ import annotations

import math

import pytest

from voicebot.lm.ngram import (
    ArpaFormatError,
    ArpaModel,
    PocketsphinxModel,
    load_ngram,
    per_word_details,
    sentence_logprob,
)

LN10 = math.log(10)
ARPA = """
\\data\\
ngram 1=4
ngram 2=3

\\1-grams:
-1.0 <s> -0.5
-0.5 </s>
-0.6 a -0.3
-0.9 b -0.2

\\2-grams:
-0.2 <s> a
-0.4 a b
-0.3 b </s>

\\end\\
"""


@pytest.fixture
def arpa(tmp_path):
    path = tmp_path / "tiny.arpa"
    path.write_text(ARPA, encoding="utf-8")
    return ArpaModel(path, oov_logprob=-50.0)


def test_arpa_scores_with_boundaries_and_backoff(arpa):
    assert arpa.order == 2
    # All three bigrams exist: log10 -0.2 -0.4 -0.3.
    assert sentence_logprob(arpa, ["a", "b"]) == pytest.approx(-0.9 * LN10)
    # b|<s>: backoff(<s>) + p(b); a|b: backoff(b) + p(a); </s>|a: backoff(a) + p(</s>).
    expected = (-0.5 - 0.9) + (-0.2 - 0.6) + (-0.3 - 0.5)
    assert sentence_logprob(arpa, ["b", "a"]) == pytest.approx(expected * LN10)
    # Without boundaries only the words' own probabilities count.
    assert sentence_logprob(arpa, ["a"], bos=False, eos=False) == pytest.approx(-0.6 * LN10)


def test_arpa_unknown_words_cost_the_oov_penalty(arpa):
    with_oov = sentence_logprob(arpa, ["a", "zzz", "b"])
    # zzz costs -50; b after an unknown word backs off to its unigram.
    assert with_oov == pytest.approx(-0.2 * LN10 - 50.0 + (-0.9 - 0.3) * LN10)
    details = per_word_details(arpa, ["a", "zzz"])
    assert [known for _, _, known in details] == [True, False, True]


def test_arpa_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.arpa"
    bad.write_text("hello\n", encoding="utf-8")
    with pytest.raises(ArpaFormatError, match="not an ARPA"):
        ArpaModel(bad)
    wrong = tmp_path / "wrong.arpa"
    wrong.write_text(ARPA.replace("ngram 2=3", "ngram 2=5"), encoding="utf-8")
    with pytest.raises(ArpaFormatError, match="header says 5"):
        ArpaModel(wrong)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no n-gram LM"):
        load_ngram(empty)


def test_pocketsphinx_lm_prefers_fluent_english(ngram_lm):
    assert isinstance(ngram_lm, PocketsphinxModel)
    assert ngram_lm.order == 3 and ngram_lm.path.name == "en-us.lm.bin"
    assert ngram_lm.contains("clubs") and not ngram_lm.contains("sposed")
    clubs = sentence_logprob(ngram_lm, ["four", "of", "clubs"])
    close = sentence_logprob(ngram_lm, ["four", "of", "close"])
    assert clubs > close
    # Sentence boundaries matter: "of" is a poor first and last word.
    assert sentence_logprob(ngram_lm, ["of"]) < sentence_logprob(ngram_lm, ["yes"])
    # Probabilities are natural logs of real probabilities.
    assert -15 < ngram_lm.word_logprob("the", ["<s>"]) < 0
    assert ngram_lm.word_logprob("sposed", ["old"]) == ngram_lm.oov_logprob


def test_user_text_lm_is_a_proper_distribution_and_biases_toward_names(tmp_path, ngram_lm):
    from voicebot.asr.recognizer import Hypothesis
    from voicebot.asr.rescoring import TUNED_WEIGHTS, rescore
    from voicebot.lm.ngram_build import InterpolatedLM, write_arpa

    texts = ["Call Kwabena tomorrow.", "Remind me to call Kwabena", "Kwabena likes tea",
             "call mom"]
    user = ArpaModel(write_arpa(texts, tmp_path / "user.arpa", order=3))
    vocab = [g[0] for g in user.ngrams if len(g) == 1 and g[0] != "<s>"]
    for history in ([], ["<s>"], ["call"], ["to", "call"], ["unseen"]):
        total = sum(math.exp(user.word_logprob(w, history)) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-4)  # ARPA keeps 6 decimals
    assert not ngram_lm.contains("kwabena")
    mixed = InterpolatedLM(ngram_lm, user, weight=0.3)
    nbest = [Hypothesis("call cabana tomorrow", -2.0),
             Hypothesis("call kwabena tomorrow", -2.3)]
    assert rescore(nbest, ngram_lm, TUNED_WEIGHTS).text == "call cabana tomorrow"
    assert rescore(nbest, mixed, TUNED_WEIGHTS).text == "call kwabena tomorrow"
    with pytest.raises(ValueError, match="no words"):
        write_arpa(["", "  ?! "], tmp_path / "empty.arpa")
