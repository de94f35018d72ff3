"""Memory forms, the token budget, and the recent replies' phrases kept out of the next reply (no model)."""

from __future__ import annotations

import pytest

from aituber.core.conversation import Conversation, avoid_fragments
from aituber.core.prompt import CHAT, INSTRUCTION, RINNA, MemoryForm, PromptBuilder, PromptForm, Turn, select_history

HISTORY = [Turn("好きな食べ物は？", "いちごパフェだよ！", "たぬき丸"), Turn("ゲームする？", "するよ〜", "ねこ")]
GEMMA_LIKE = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}"
              "<end_of_turn>\n{% endfor %}<start_of_turn>model\n")


def test_comments_memory_lists_the_viewers_comments_in_the_input_and_never_the_replies() -> None:
    builder = PromptBuilder(INSTRUCTION, "ペルソナ", memory="comments")
    prompt = builder.build("歌って！", "しお", HISTORY)
    assert prompt.static == "ペルソナ\n\n"
    assert prompt.dynamic == ("### instruction:\n歌って！\n\n### input:\n視聴者名: しお\n"
                              "前のコメント: たぬき丸「好きな食べ物は？」\n前のコメント: ねこ「ゲームする？」\n\n"
                              "### output:\n")
    assert "いちごパフェ" not in prompt.text and "するよ" not in prompt.text


def test_comments_memory_without_viewer_names() -> None:
    builder = PromptBuilder(INSTRUCTION, "", viewer_names=False, memory=MemoryForm.COMMENTS)
    prompt = builder.build("歌って！", "しお", HISTORY[:1])
    assert prompt.text == "### instruction:\n歌って！\n\n### input:\n前のコメント: 「好きな食べ物は？」\n\n### output:\n"


def test_replies_memory_shows_whole_exchanges_as_before() -> None:
    builder = PromptBuilder(INSTRUCTION, "", memory="replies")
    prompt = builder.build("歌って！", "しお", HISTORY[:1])
    assert prompt.text == ("### instruction:\n好きな食べ物は？\n\n### input:\n視聴者名: たぬき丸\n\n### output:\n"
                           "いちごパフェだよ！\n\n### instruction:\n歌って！\n\n### input:\n視聴者名: しお\n\n"
                           "### output:\n")


def test_an_unknown_memory_form_is_refused() -> None:
    with pytest.raises(ValueError):
        PromptBuilder(INSTRUCTION, "", memory="everything")


@pytest.mark.parametrize("memory", ["comments", "replies"])
def test_training_examples_show_memory_exactly_as_the_bot_does(memory: str) -> None:
    builder = PromptBuilder(INSTRUCTION, "ペルソナ", memory=memory)
    prompt, completion = builder.training_example("歌って！", "いいよ〜", "視聴者名: しお", HISTORY)
    assert prompt == builder.build("歌って！", "しお", HISTORY).text and completion == "いいよ〜"


def test_other_templates_carry_the_remembered_comments_before_the_comment() -> None:
    rinna = PromptBuilder(RINNA, "ペルソナ", memory="comments").build("歌って", "しお", HISTORY[:1])
    assert rinna.dynamic == "ユーザー: （前のコメント: たぬき丸「好きな食べ物は？」）（しお）歌って<NL>システム: "
    chat = PromptBuilder(CHAT, "ペルソナ", chat_template=GEMMA_LIKE, special_tokens={"bos_token": "<bos>"},
                         memory="comments")
    messages = chat.build("歌って", "しお", HISTORY[:1], form=PromptForm.MESSAGES).messages
    assert messages[-1] == {"role": "user", "content": "（前のコメント: たぬき丸「好きな食べ物は？」）しお: 歌って"}
    assert len(messages) == 2  # system + the comment: no assistant turn to copy
    with_memory = chat.build("歌って", "しお", HISTORY[:1])
    assert with_memory.static == chat.build("ほかのコメント", "ねこ").static != ""  # the cached prefix stays the same
    assert "たぬき丸" not in with_memory.static


def test_the_budget_counts_only_what_the_form_shows() -> None:
    turns = [Turn("a" * 10, "b" * 100, "v"), Turn("c" * 10, "d" * 100, "w")]
    assert select_history(turns, len, 150, "replies") == turns[1:]
    assert select_history(turns, len, 150, "comments") == turns
    assert select_history(turns, len, 10, "comments") == []


def test_avoid_fragments_leave_out_the_viewer_name_and_the_comment() -> None:
    replies = ["たぬき丸さん、こんばんは！今日も来てくれてうれしいよ", "いちごパフェが大好きだよ！"]
    assert avoid_fragments(replies, "ミカちゃんこんばんは", "たぬき丸") == (
        "さん、", "！今日も来てくれてうれしいよ", "いちごパフェが大好きだよ！")
    assert avoid_fragments(replies) == tuple(replies)
    assert avoid_fragments(["  ", "たぬき丸"], "", "たぬき丸") == ()
    assert avoid_fragments(["まるさん、ミカはうれしいよ〜"], "", "まる") == ("さん、ミカはうれしいよ〜",)


def test_conversation_remembers_and_avoids_the_last_replies() -> None:
    conversation = Conversation(PromptBuilder(INSTRUCTION, "", memory="comments"), len, memory_turns=2,
                                avoid_recent=2)
    for i in range(3):
        conversation.remember(f"コメント{i}", "しお", f"返事その{i}だよ")
    assert [t.comment for t in conversation.history()] == ["コメント1", "コメント2"]
    assert conversation.avoid("こんにちは", "ねこ") == ("返事その1だよ", "返事その2だよ")
    conversation.said("雑談のひとこと")
    assert conversation.avoid() == ("返事その2だよ", "雑談のひとこと")
    assert "返事" not in conversation.for_comment("次", "ねこ").text


def test_avoiding_nothing_when_turned_off() -> None:
    conversation = Conversation(PromptBuilder(INSTRUCTION, ""), len, avoid_recent=0)
    conversation.remember("やあ", "しお", "やっほー！")
    assert conversation.avoid("やあ", "しお") == ()
    assert [t.reply for t in conversation.history()] == ["やっほー！"]
