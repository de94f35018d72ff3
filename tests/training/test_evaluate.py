"""The evaluation: the metric definitions, the bot's prompt/options, a report from the real engine."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from training.evaluate import (
    bot_generation_options,
    bot_prompt_builder,
    has_loop,
    mostly_japanese,
    persona_marker,
    repeated_ngram_share,
    template_leak,
)
from training.settings import load_training_character


def test_mostly_japanese_counts_letters_only() -> None:
    assert mostly_japanese("ミカだよ！ありがとう😊")
    assert mostly_japanese("ゲームのFPSが好きだよ")  # 3 of 11 letters Latin
    assert mostly_japanese("ｶﾀｶﾅ and 漢字")  # 6 of 9
    assert not mostly_japanese("Hello, my name is Mika だよ")
    assert not mostly_japanese("") and not mostly_japanese("!!! 123 ...")


def test_loops_are_a_4gram_three_times_or_a_repeated_line() -> None:
    assert has_loop("お風呂で寝る\n\n### output:\nお風呂で寝る")  # the repeated line
    assert has_loop("すごいすごいすごいすごい")  # "すごいす" three times
    assert has_loop("ーーーーーー")
    assert not has_loop("すごいすごい！ミカもうれしいよ")
    assert not has_loop("ありがとう！ミカもうれしいよ。またね")
    assert repeated_ngram_share("abcdabcd") == pytest.approx(1 - 4 / 5)
    assert repeated_ngram_share("abc") == 0.0


def test_template_leaks() -> None:
    assert template_leak("はい ### instruction:") and template_leak("Output: こんにちは")
    assert template_leak("input:視聴者") and not template_leak("いい出力だね")


def test_persona_markers(sample_character: Path) -> None:
    character, _ = load_training_character(sample_character)
    assert persona_marker("ミカはうれしい", character)
    assert persona_marker("楽しいよ〜", character) and persona_marker("そうだね", character)
    assert not persona_marker("そうですね。ありがとうございます。", character)


def test_prompts_and_options_are_the_bots(sample_character: Path) -> None:
    """The evaluation asks the model with the very functions the pipeline uses."""
    from aituber import app

    assert bot_generation_options is app.generation_options
    assert bot_prompt_builder is app.prompt_builder


def test_model_stops_leave_out_only_the_templates_safety_net(sample_character: Path) -> None:
    """By default the model ends its own reply, so template leaks and loops can be counted at all."""
    from training.evaluate import eval_generation_options

    character, _ = load_training_character(sample_character)
    bot = bot_generation_options(character)
    assert "###" in bot.stop_strings and "\n\n" in bot.stop_strings
    assert eval_generation_options(character, "bot") == bot
    model = eval_generation_options(character, "model")
    assert model.stop_strings == tuple(character.stop_strings)
    assert dataclasses.replace(model, stop_strings=bot.stop_strings) == bot  # nothing else differs
    with pytest.raises(ValueError, match="stops"):
        eval_generation_options(character, "none")


@pytest.mark.slow
def test_report_from_the_engine(trained, tiny_character: Path) -> None:
    from training.evaluate import comparison, evaluate_character, render_markdown

    report = evaluate_character(tiny_character, trained.model_dir, baseline_dir=trained.model_dir, device="cpu")
    assert len(report.tuned.replies) == len(report.base.replies) == 3
    assert [r.text for r in report.tuned.replies] == [r.text for r in report.base.replies]  # seeded
    assert all(r.total_s > 0 for r in report.tuned.replies)
    text = render_markdown(report)
    assert "| metric | base | tuned |" in text and "mostly Japanese" in text and "| 元気？ |" in text
    assert "stop strings" in text and "'###'" in text
    assert all(comparison(report).values())
    assert evaluate_character(tiny_character, trained.model_dir, limit=1, device="cpu").tuned.replies[0].comment == "こんにちは！"
    seen: list[tuple[int, int]] = []
    bot = evaluate_character(tiny_character, trained.model_dir, limit=2, device="cpu", stops="bot",
                             progress=lambda done, total: seen.append((done, total)))
    assert bot.stops == "bot" and seen == [(1, 2), (2, 2)] and "as a viewer would see them" in render_markdown(bot)


def test_training_never_imports_the_outputs_or_sources() -> None:
    import subprocess
    import sys

    code = ("import sys, training.dataset, training.settings, training.lora, training.train, training.export, "
            "training.evaluate; bad = [m for m in sys.modules if m.startswith(('aituber.outputs', 'aituber.sources', "
            "'aituber.app', 'torch'))]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_aituber_eval_command_writes_the_report(trained, tiny_character: Path, tmp_path: Path, capsys) -> None:
    from aituber.cli import main

    out = tmp_path / "report.md"
    assert main(["eval", str(tiny_character), "--model", str(trained.model_dir), "--baseline",
                 str(trained.model_dir), "--limit", "2", "--bot-stops", "--device", "cpu", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "| metric | base | tuned |" in text and "as a viewer would see them" in text
    captured = capsys.readouterr()
    assert f"report: {out}" in captured.out and "2/2 comments" in captured.err
    assert main(["eval", str(tiny_character), "--model", str(tmp_path / "nothing")]) == 2
    assert "nothing" in capsys.readouterr().err


def test_time_per_token_leaves_out_the_prefill() -> None:
    from training.evaluate import Reply

    short = Reply("s", "c", "ab", "stop", first_token_s=0.08, total_s=0.18, tokens=3)
    long = Reply("s", "c", "ab" * 10, "length", first_token_s=0.08, total_s=0.08 + 0.05 * 47, tokens=48)
    assert short.decode_per_token_s == pytest.approx(0.05) and long.decode_per_token_s == pytest.approx(0.05)
    assert Reply("s", "c", "a", "stop", 0.08, 0.08, 1).decode_per_token_s is None
    assert Reply("s", "c", "", "stop", None, 0.3, 5).decode_per_token_s is None


def _session_run(texts: list[tuple[str, str]], label: str):
    from training.session import SessionReply, SessionRun

    run = SessionRun(log=Path("chat.jsonl"), model_dir=Path(label), label=label, comments=len(texts) + 1,
                     skipped={"empty": 1}, thanks=1, device="cpu", compute_type="int8")
    for i, (comment, text) in enumerate(texts):
        run.replies.append(SessionReply(f"c{i}", comment, "しお", text, text, "stop", 0.1 * (i + 1), 1.0, 10))
    return run


def test_the_session_report_puts_base_and_tuned_side_by_side(sample_character: Path) -> None:
    from training.evaluate import SessionReport, render_session, session_comparison, session_metrics
    from training.session import comment_key

    character, _ = load_training_character(sample_character)
    expectations = {comment_key("ゲームは好き？"): ("ゲーム",)}
    base = _session_run([("ゲームは好き？", "ごめんね、ミカはじっくりみてるよ"),
                         ("こんばんは", "ごめんね、ミカはじっくりみてるよ〜")], "base")
    tuned = _session_run([("ゲームは好き？", "ゲーム大好きだよ！"), ("こんばんは", "こんばんは！ゆっくりしてね、ミカより")], "tuned")
    metrics = session_metrics(tuned, character, expectations)
    assert (metrics["echo_rate"], metrics["top_opening"], metrics["on_topic"], metrics["on_topic_n"]) == (0.0, 0.5, 1.0, 1)
    assert metrics["replies"] == 2 and metrics["thanks"] == 1 and metrics["skipped"] == 1
    assert metrics["first_token_p50_ms"] == 100
    assert session_metrics(base, character, expectations)["echo_rate"] == 0.5
    report = SessionReport(character, Path("chat.jsonl"), tuned, base, expectations)
    text = render_session(report)
    assert "| metric | base | tuned |" in text
    assert "| echo rate (a 6-char run from one of the 5 previous replies) | 50.0 % | 0.0 % |" in text
    assert "| most common opening (3 chars), share of replies | 100.0 % (ごめん) | 50.0 % (ゲーム) |" in text
    assert "| on-topic (an expected keyword; comments with `expect`) | 0.0 % | 100.0 % |" in text
    assert "| ゲームは好き？ | ごめんね、ミカはじっくりみてるよ | ゲーム大好きだよ！ |" in text
    assert all(session_comparison(report).values())


@pytest.mark.slow
def test_aituber_eval_session_replays_a_log_through_the_pipeline(trained, tiny_character: Path, tmp_path: Path,
                                                                 capsys) -> None:
    import json

    from aituber.cli import main

    log = tmp_path / "chat.jsonl"
    log.write_text("".join(json.dumps({"id": f"c{i}", "offset_s": float(i), "author": {"name": name},
                                       "kind": "text", "text": text}, ensure_ascii=False) + "\n"
                           for i, (name, text) in enumerate([("たろう", "こんにちは！"), ("はな", "元気？"),
                                                             ("じろう", ""), ("たろう", "歌って")])),
                   encoding="utf-8")
    out = tmp_path / "session.md"
    assert main(["eval", str(tiny_character), "--model", str(trained.model_dir), "--baseline",
                 str(trained.model_dir), "--session", str(log), "--avoid-recent", "3", "--device", "cpu",
                 "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Session evaluation: ミカ (tiny)") and "## Session:" in text
    assert "| metric | base | tuned |" in text and "| model replies (answers and idle talk) | 3 | 3 |" in text
    assert "| comments skipped (moderation, queue) | 1 | 1 |" in text
    assert "memory `comments` (2 turns)" in text and "the last 3 replies suppressed" in text
    err = capsys.readouterr().err
    assert "session chat.jsonl (tuned): 4/4 items" in err and "session chat.jsonl (base): 4/4 items" in err
    assert main(["eval", str(tiny_character), "--model", str(trained.model_dir), "--session",
                 str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: chat log not found" in capsys.readouterr().err


@pytest.mark.slow
def test_aituber_eval_compares_the_characters_own_model_with_the_untuned_one(
        trained, tiny_character: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """Without --model, `aituber eval` runs the character's tuned model against the untuned default
    (base against tuned); `--baseline none` runs the tuned model alone."""
    import json
    import shutil

    import aituber.cli as cli

    untuned = shutil.copytree(trained.model_dir, tmp_path / "untuned")  # stands in for the prepared default
    monkeypatch.setattr(cli, "resolve_model", lambda model, character_dir: (trained.model_dir, "tiny's trained model"))
    monkeypatch.setattr(cli, "_ensure_default_model", lambda: untuned)
    log = tmp_path / "chat.jsonl"
    log.write_text("".join(json.dumps({"id": f"c{i}", "offset_s": float(i), "author": {"name": "たろう"},
                                       "kind": "text", "text": text}, ensure_ascii=False) + "\n"
                           for i, text in enumerate(["こんにちは！", "元気？"])), encoding="utf-8")
    out = tmp_path / "session.md"
    assert cli.main(["eval", str(tiny_character), "--session", str(log), "--device", "cpu", "--out", str(out)]) == 0
    assert "| metric | base | tuned |" in out.read_text(encoding="utf-8")
    assert "session chat.jsonl (base): 2/2 items" in capsys.readouterr().err
    assert cli.main(["eval", str(tiny_character), "--session", str(log), "--baseline", "none", "--device", "cpu",
                     "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "| metric | model |" in text and "| metric | base |" not in text
