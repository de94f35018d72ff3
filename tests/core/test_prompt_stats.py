from aituber.core.events import CommentSkipped, ReplyEnded, CommentSeen
from aituber.core.comment import Author, Comment
from aituber.core.prompt import INSTRUCTION, PromptBuilder
from aituber.core.stats import RunStats, percentile


def build_prompt(persona: str, comment: str) -> str:
    """The plain seed prompt: persona, then the comment turn; no viewer name, no memory."""
    return PromptBuilder(INSTRUCTION, persona, viewer_names=False).build(comment).text


def test_prompt_is_persona_then_the_seed_template():
    prompt = build_prompt("あなたはミカです。\n", "  こんにちは ")
    assert prompt == "あなたはミカです。\n\n### instruction:\nこんにちは\n\n### output:\n"


def test_prompt_without_persona():
    assert build_prompt("", "やあ").startswith("### instruction:\nやあ")


def test_percentile_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0


def test_stats_count_events_and_summarise():
    stats = RunStats()
    c = Comment(id="1", author=Author("a"), text="x")
    stats.record(CommentSeen(c))
    stats.record(CommentSkipped(c, "empty"))
    stats.record(ReplyEnded("r1", "1", "hi", "stop", 0.2, 0.5, 4))
    assert stats.seen == 1 and stats.answered == 1 and stats.skipped["empty"] == 1
    lines = stats.summary_lines()
    assert "answered 1" in lines[0] and "empty 1" in lines[0]
    assert "p50 200 ms" in lines[1] and "p50 500 ms" in lines[2]


def test_training_examples_are_the_prompts_the_bot_builds():
    from aituber.core.prompt import PromptBuilder, Turn

    builder = PromptBuilder(INSTRUCTION, "あなたはミカです。")
    history = [Turn("好きな食べ物は？", "いちごだよ！", "たぬき丸")]
    prompt, completion = builder.training_example("ゲームは好き？", "大好きだよ！", "視聴者名: ねこ", history)
    assert prompt == builder.build("ゲームは好き？", "ねこ", history).text
    assert completion == "大好きだよ！"
