"""`voicebot chat` and `voicebot bench lm`, run in-process with the session's model."""

from __future__ import annotations

import io
import json

import pytest

from voicebot.cli import main
from voicebot.lm import bench as lm_bench
from voicebot.lm import cli_chat


@pytest.fixture
def shared_model(chat_model, monkeypatch):
    """Loading is tested elsewhere; here every command gets the session's model."""
    monkeypatch.setattr(cli_chat, "_load", lambda args: chat_model)
    return chat_model


def test_one_shot_json(shared_model, capsys):
    assert main(["chat", "What is the capital of France?", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reply"] and result["speakable"]
    assert result["backend"] == shared_model.backend.name
    assert result["stats"]["new_tokens"] > 0 and result["first_clause_s"] > 0


def test_one_shot_streams_plain_text(shared_model, capsys):
    assert main(["chat", "Say hello."]) == 0
    assert capsys.readouterr().out.strip()


def test_empty_message_loads_nothing(monkeypatch, capsys):
    def fail(_args):
        raise AssertionError("the model must not be loaded for an empty message")

    monkeypatch.setattr(cli_chat, "_load", fail)
    assert main(["chat", "   ", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"reply": "", "speakable": [], "stats": None}


def test_interactive_mode_remembers_until_reset(shared_model, monkeypatch, capsys):
    lines = "My name is Ada.\n\nWhat is my name?\n/reset\nWhat is my name?\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert main(["chat"]) == 0
    replies = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(replies) == 3
    # After /reset the prompt no longer holds the name.
    assert "Ada" not in shared_model.tokenizer.decode(shared_model.last_prompt.ids)


def test_interactive_json_prints_one_object_per_reply(shared_model, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("My name is Ada.\n\nWhat is my name?\n"))
    assert main(["chat", "--json"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 2
    results = [json.loads(line) for line in lines]
    assert all(r["reply"] and r["speakable"] and r["stats"]["new_tokens"] > 0
               and r["turn_s"] > 0 for r in results)
    assert "Ada" in results[1]["reply"]  # the conversation is remembered


def test_bench_lm_reports_every_number(shared_model, monkeypatch, capsys):
    monkeypatch.setattr("voicebot.lm.loading.load_chat_model", lambda *a, **k: shared_model)
    saved = shared_model.options
    try:
        assert main(["bench", "lm", "--json", "--lm-runs", "1", "--lm-tokens", "8",
                     "--lm-skip-naive"]) == 0
    finally:
        shared_model.options = saved
    result = json.loads(capsys.readouterr().out)
    for key in ("ttft_ms", "ttft_cold_ms", "first_clause_ms", "tokens_per_s", "threads",
                "load_average_before", "backend"):
        assert result[key] is not None, key
    assert result["new_tokens"] == 8
    assert lm_bench.BENCH_QUESTION
