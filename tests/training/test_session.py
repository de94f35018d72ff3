"""Session evaluation: the session's measures on known replies, and a chat log replayed through the
pipeline on a scripted engine (no model), each comment paced by the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aituber.config import load_character
from tests.scripted_engine import ScriptedEngine
from training.dataset import DatasetError
from training.session import (
    SessionReply,
    comment_key,
    distinct_n,
    echo_flags,
    echo_rate,
    echoes,
    load_expectations,
    on_topic,
    on_topic_rate,
    session_on_engine,
    top_opening,
)


def reply(text: str, comment: str = "", viewer: str | None = None) -> SessionReply:
    return SessionReply(comment_id="c" if comment else "", comment=comment, viewer=viewer, text=text, raw=text,
                        stop="stop", first_text_s=0.1, total_s=0.5, tokens=len(text))


def test_an_echo_is_a_six_character_run_from_one_of_the_five_previous_replies() -> None:
    assert echoes("ミカはじっくりみてるよ〜！", ["今日もミカはじっくりみてるよ"])
    assert not echoes("ミカはじっと見てる", ["今日もミカはじっくりみてるよ"])  # "ミカはじっ": 5 characters
    assert not echoes("あいうえおか", ["あいうえお"])  # 5 characters shared
    assert echoes("あいうえおか", ["xあいうえおかx"])
    replies = [reply("いちごパフェが大好きだよ！"), reply("a"), reply("b"), reply("c"), reply("d"), reply("e"),
               reply("いちごパフェが大好きだよ！")]
    assert echo_flags(replies) == [False] * 7  # the first is six replies back: out of the window
    assert echo_flags(replies, window=6)[-1]


def test_text_taken_from_the_comment_or_the_viewer_name_is_no_echo() -> None:
    first = reply("たぬき丸さん、こんばんは！")
    again = reply("たぬき丸さん、来てくれたの？", "やっほー", "たぬき丸")  # the name: not an echo
    greet = reply("こんばんは！ゆっくりしてね", "こんばんは！", "しお")  # the greeting came from the comment
    copied = reply("来てくれたの？うれしい", "ただいま", "ねこ")  # "来てくれたの？" is the bot's own phrase
    assert echo_flags([first, again, greet, copied]) == [False, False, False, True]
    assert echo_rate([first, again, greet, copied]) == 0.25
    short = [reply("まるさん、ようこそ！"), reply("まるさん、げんきかな", "やあ", "まる")]  # a 2-character name
    assert echo_flags(short) == [False, False]
    assert echo_rate([]) is None
    # The comment as the model saw it (NFKC): "？" in the reply, "?" in the comment.
    assert not echoes("元気かなって？いいね", ["元気かなって？ふふ"], ["元気かなって?"])


def test_openings_distinct_2_and_on_topic() -> None:
    assert top_opening(["ごめんね", "ごめんなさい", "いいよ", " ごめんだよ"]) == ("ごめん", 0.75)
    assert top_opening([]) is None
    assert distinct_n(["あいあい", "あい"]) == pytest.approx(2 / 4)  # あい, いあ, あい | あい
    assert distinct_n(["a b"]) == 1.0 and distinct_n(["a"]) is None
    assert on_topic("Hello! ミカだよ", ["hello"]) and on_topic("ｹﾞｰﾑ好き", ["ゲーム"])
    assert not on_topic("こんにちは", ["ゲーム"])
    expectations = {comment_key("ゲームは好き？"): ("ゲーム",), comment_key("Hello Mika"): ("hello", "ハロー")}
    replies = [reply("ゲーム大好き！", "ゲームは 好き?"), reply("うん", "hello mika"), reply("ハロー！", "HELLO MIKA"),
               reply("なにそれ", "ほかのコメント")]
    assert on_topic_rate(replies, expectations) == (pytest.approx(2 / 3), 3)
    assert on_topic_rate(replies[3:], expectations) == (None, 0)


def test_expectations_come_from_the_eval_file(tmp_path: Path) -> None:
    path = tmp_path / "eval.jsonl"
    path.write_text('{"instruction": "ゲームは好き？", "expect": ["ゲーム"]}\n\n{"instruction": "やあ"}\n',
                    encoding="utf-8")
    assert load_expectations(path) == {comment_key("ゲームは好き?"): ("ゲーム",)}
    assert load_expectations(tmp_path / "none.jsonl") == {}
    path.write_text('{"instruction": "x", "expect": []}\n{"instruction": "y", "expect": "ゲーム"}\n', encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        load_expectations(path)
    assert [p.split(": ")[0] for p in caught.value.problems] == [f"{path}:1", f"{path}:2"]


def test_the_sample_characters_eval_expectations_load(sample_character: Path) -> None:
    assert len(load_expectations(sample_character / "dataset" / "eval.jsonl")) >= 100


def write_log(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def row(i: int, text: str, name: str, kind: str = "text", amount: float | None = None) -> dict:
    return {"id": f"c{i}", "offset_s": float(i), "author": {"name": name, "channel_id": f"UC{name}"},
            "kind": kind, "text": text, "amount": amount, "currency": "JPY" if amount else None}


async def test_a_log_replays_through_the_pipeline_comment_by_comment(sample_character: Path, tmp_path: Path) -> None:
    from training.evaluate import with_overrides

    character = with_overrides(load_character(sample_character).character, memory="comments", avoid_recent=5)
    log = write_log(tmp_path / "chat.jsonl", [
        row(1, "こんばんは！", "たぬき丸"), row(2, "", "しお"), row(3, "好きな食べ物は？", "ねこ"),
        row(4, "応援してます", "ぶどう", "super_chat", 500.0), row(5, "ゲームする？", "しお")])
    engine = ScriptedEngine(["こんばんは、たぬき丸さん！", "いちごパフェだよ！", "ありがとう！うれしいよ", "するよ〜"])
    lines: list[str] = []
    run = await session_on_engine(character, log, engine, label="scripted", progress=lines.append,
                                  pace_timeout_s=10)
    assert run.comments == 5 and run.skipped == {"empty": 1}
    assert [(r.comment_id, r.viewer, r.text) for r in run.replies] == [
        ("c1", "たぬき丸", "こんばんは、たぬき丸さん！"), ("c3", "ねこ", "いちごパフェだよ！"),
        ("c4", "ぶどう", "ありがとう！うれしいよ"), ("c5", "しお", "するよ〜")]
    # each comment was let in once the one before was dealt with: the queue never held two
    assert len(engine.prompts) == 4 and "前のコメント: ねこ「好きな食べ物は?」" in engine.prompts[2].dynamic
    assert "いちごパフェ" not in engine.prompts[3].text  # memory holds comments (the character's default)
    assert run.replies[3].avoid[-1] == "ありがとう！うれしいよ" == engine.options[3].avoid[-1]
    assert lines[-1] == "session chat.jsonl (scripted): 5/5 items"


def test_the_log_clock_follows_the_log_and_never_goes_back() -> None:
    from training.session import LogClock

    now = [100.0]
    clock = LogClock(start=1000.0, monotonic=lambda: now[0])
    assert clock() == 1000.0
    clock.advance_to(30.0)  # a comment 30 s into the log
    assert clock() == 1030.0
    now[0] += 5.0  # a reply took 5 s
    assert clock() == 1035.0
    clock.advance_to(32.0)  # the next comment was already due: time does not go back
    assert clock() == 1035.0
    now[0] += 1.0
    clock.advance_to(120.0)
    assert clock() == 1120.0


async def test_viewer_limits_fall_on_the_logs_time_not_the_machines(sample_character: Path, tmp_path: Path) -> None:
    """Four answers to one viewer within 300 s of the log: the fourth is over the limit (3); spread
    over 20 minutes of the log, all four are answered, however fast the replies come."""
    character = load_character(sample_character).character
    close = write_log(tmp_path / "close.jsonl", [row(i, f"質問{i}です", "しお") for i in range(1, 5)])
    spread = write_log(tmp_path / "spread.jsonl",
                       [{**row(i, f"質問{i}です", "しお"), "offset_s": 400.0 * i} for i in range(1, 5)])
    close_run = await session_on_engine(character, close, ScriptedEngine(), pace_timeout_s=10)
    spread_run = await session_on_engine(character, spread, ScriptedEngine(), pace_timeout_s=10)
    assert len(close_run.replies) == 3 and close_run.skipped == {"viewer_limit": 1}
    assert len(spread_run.replies) == 4 and spread_run.skipped == {}
