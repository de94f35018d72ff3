"""The pure YouTube JSON -> Comment conversion, video ids, and the bounded memories. No event loop."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aituber.core.comment import CommentDeleted, CommentKind
from aituber.core.youtube_items import (
    IGNORED_REASONS,
    AuthorCommentsDeleted,
    Ignored,
    RecentIds,
    convert_action,
    expand_action,
    parse_amount,
    parse_jewels_line,
    runs_text,
)
from aituber.errors import ChatSourceError
from aituber.sources.youtube import parse_video_id
from tests.conftest import require_shared
from tests.sources import youtube_2026 as y2026

VIDEO = "dQw4w9WgXcQ"


@pytest.mark.parametrize("text", [
    VIDEO,
    f"  {VIDEO}\n",
    f"https://www.youtube.com/watch?v={VIDEO}",
    f"https://www.youtube.com/watch?v={VIDEO}&t=42s&list=PL123&index=2",
    f"https://www.youtube.com/watch?feature=share&v={VIDEO}",
    f"http://youtube.com/watch?v={VIDEO}",
    f"www.youtube.com/watch?v={VIDEO}",
    f"youtube.com/watch?v={VIDEO}",
    f"https://m.youtube.com/watch?v={VIDEO}&ab_channel=x",
    f"https://music.youtube.com/watch?v={VIDEO}",
    f"https://youtu.be/{VIDEO}",
    f"https://youtu.be/{VIDEO}?si=AbCdEf&t=10",
    f"youtu.be/{VIDEO}",
    f"https://www.youtube.com/live/{VIDEO}",
    f"https://www.youtube.com/live/{VIDEO}?feature=share",
    f"https://www.youtube.com/shorts/{VIDEO}",
    f"https://youtube.com/shorts/{VIDEO}?si=x",
    f"https://www.youtube.com/embed/{VIDEO}?autoplay=1",
    f"https://www.youtube-nocookie.com/embed/{VIDEO}",
    f"https://www.youtube.com/v/{VIDEO}",
    f"https://www.youtube.com/watch?v={VIDEO}#t=30",
])
def test_video_ids_from_every_common_form(text):
    assert parse_video_id(text) == VIDEO


@pytest.mark.parametrize("text", [
    "", "hello", VIDEO + "x", VIDEO[:10], "dQw4w9WgXc!",
    f"https://example.com/watch?v={VIDEO}",
    f"https://notyoutube.com/watch?v={VIDEO}",
    "https://www.youtube.com/watch?v=short",
    "https://www.youtube.com/watch?list=PL123",
    "https://www.youtube.com/@mika/live",
    "https://www.youtube.com/channel/UCxxxxxxxxxxxxxxxxxxxxxx",
    "https://youtu.be/",
    "https://[::1",
])
def test_anything_else_is_a_one_line_error(text):
    with pytest.raises(ChatSourceError) as raised:
        parse_video_id(text)
    assert "\n" not in str(raised.value) and "YouTube" in str(raised.value)


@pytest.mark.parametrize(("text", "amount", "currency"), [
    ("￥1,000", 1000.0, "JPY"),
    ("¥370", 370.0, "JPY"),
    ("JP¥500", 500.0, "JPY"),
    ("$30.00", 30.0, "USD"),
    ("US$5.00", 5.0, "USD"),
    ("CA$5.00", 5.0, "CAD"),
    ("NT$75.00", 75.0, "TWD"),
    ("₩1,000", 1000.0, "KRW"),
    ("€2.00", 2.0, "EUR"),
    ("5,00\u00a0€", 5.0, "EUR"),
    ("1.234,56 €", 1234.56, "EUR"),
    ("R$ 1.000,00", 1000.0, "BRL"),
    ("CHF\u00a05.00", 5.0, "CHF"),
    ("CZK 20.00", 20.0, "CZK"),
    ("₹199.00", 199.0, "INR"),
    ("￥1.000", 1000.0, "JPY"),
    ("[UNREGISTERD]10,800", 10800.0, "[UNREGISTERD]"),
])
def test_amounts_and_iso_currencies(text, amount, currency):
    assert parse_amount(text) == (amount, currency)


def test_every_symbol_in_pytchats_currency_table_gets_its_code():
    from pytchat.processors.default.renderer import currency

    for symbol, info in currency.symbols.items():
        assert parse_amount(f"{symbol}1,000") == (1000.0, info["fxtext"]), symbol


def test_no_number_is_an_error():
    with pytest.raises(ValueError, match="no amount"):
        parse_amount("￥")


def text_item(**fields) -> dict:
    renderer = {"id": "x1", "authorName": {"simpleText": "ねこ"}, "authorExternalChannelId": "UCneko",
                "timestampUsec": "1700000000000000", "message": {"runs": [{"text": "やあ"}]}}
    renderer.update(fields)
    return {"addChatItemAction": {"item": {"liveChatTextMessageRenderer": renderer}}}


def test_runs_join_text_and_emoji_shortcuts():
    runs = {"runs": [{"text": "かわいい"}, {"emoji": {"emojiId": "UC/abc", "shortcuts": [":_mikaHeart:", ":x:"],
                                                   "isCustomEmoji": True}},
                     {"emoji": {"emojiId": "😀", "shortcuts": [":grinning:"]}}, {"emoji": {"emojiId": "👏🏿"}},
                     {"emoji": {"emojiId": "UC/def", "isCustomEmoji": True, "searchTerms": ["wave"]}}]}
    assert runs_text(runs) == "かわいい:_mikaHeart::grinning:👏🏿:wave:"
    assert runs_text({"simpleText": "￥100"}) == "￥100"
    assert runs_text(None) == ""


def test_a_text_message_and_its_author():
    comment = convert_action(text_item(authorBadges=[
        {"liveChatAuthorBadgeRenderer": {"icon": {"iconType": "MODERATOR"}}},
        {"liveChatAuthorBadgeRenderer": {"customThumbnail": {"thumbnails": []}}}]), offset_s=3.5)
    assert comment.id == "x1" and comment.text == "やあ" and comment.kind is CommentKind.TEXT
    assert comment.author.name == "ねこ" and comment.author.channel_id == "UCneko"
    assert comment.author.is_moderator and comment.author.is_member and not comment.author.is_owner
    assert comment.timestamp == 1_700_000_000.0 and comment.offset_s == 3.5


def test_actions_that_carry_no_comment():
    assert convert_action({"markChatItemAsDeletedAction": {"targetItemId": "x1"}}) == CommentDeleted("x1")
    assert convert_action({"markChatItemsByAuthorAsDeletedAction": {"externalChannelId": "UCa"}}) == \
        AuthorCommentsDeleted("UCa")
    assert convert_action({"addLiveChatTickerItemAction": {"item": {}}}) == Ignored("ticker")
    assert convert_action({"clickTrackingParams": "x", "removeBannerForLiveChatCommand": {}}) == Ignored("banner")
    assert convert_action({"somethingNewAction": {}}) == Ignored("other")
    placeholder = {"replaceChatItemAction": {"targetItemId": "p", "replacementItem": {
        "liveChatPlaceholderItemRenderer": {"id": "p"}}}}
    assert convert_action(placeholder) == Ignored("placeholder")
    # A placeholder filled in with the real message is that message.
    real = {"replaceChatItemAction": {"targetItemId": "x1",
                                      "replacementItem": text_item()["addChatItemAction"]["item"]}}
    assert convert_action(real).text == "やあ"


def test_replay_wrappers_are_expanded_with_their_offset():
    wrapped = {"replayChatItemAction": {"actions": [text_item(), text_item(id="x2")], "videoOffsetTimeMsec": "-1500"}}
    assert [(c.id, c.offset_s) for c in expand_action(wrapped)] == [("x1", -1.5), ("x2", -1.5)]


@pytest.mark.parametrize(("action", "reason"), [
    ([], "not an object"),
    ({"addChatItemAction": 3}, "not an object"),
    (text_item(id=None), "no 'id'"),
    (text_item(message={"runs": "abc"}), "'runs' is not a list"),
    (text_item(message={"runs": [{"text": 5}]}), "not a string"),
    (text_item(authorName="ねこ"), "'authorName'"),
    (text_item(timestampUsec="soon"), "timestampUsec"),
    ({"addChatItemAction": {"item": {"liveChatPaidMessageRenderer": {"id": "p"}}}}, "purchaseAmountText"),
    ({"markChatItemAsDeletedAction": {}}, "targetItemId"),
])
def test_malformed_actions_say_why(action, reason):
    with pytest.raises(ValueError, match=reason):
        convert_action(action)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "message", "runs", "text", "emoji", "shortcuts", "authorName", "simpleText",
                         "authorBadges", "liveChatAuthorBadgeRenderer", "icon", "iconType", "item",
                         "purchaseAmountText", "timestampUsec", "header", "liveChatTextMessageRenderer",
                         "liveChatPaidMessageRenderer", "liveChatSponsorshipsGiftPurchaseAnnouncementRenderer",
                         "addChatItemAction", "replaceChatItemAction", "replacementItem",
                         "markChatItemAsDeletedAction", "targetItemId", "customThumbnail",
                         "giftMessageViewModel", "content", "giftImageA11yLabel", "addBannerToLiveChatCommand",
                         "bannerRenderer", "liveChatBannerRenderer", "contents", "bannerType",
                         "liveChatBannerChatSummaryRenderer", "chatSummary", "showLiveChatActionPanelAction",
                         "updateLiveChatPollAction", "pollToUpdate", "pollRenderer", "choices", "pollHeaderRenderer",
                         "pollQuestion", "liveChatViewerEngagementMessageRenderer"]),
        children, max_size=4),
    max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_converts_or_raises_value_error_only(value):
    try:
        convert_action(value)
    except ValueError:
        pass


def test_recent_ids_are_bounded():
    seen = RecentIds(size=3)
    assert [seen.add(i) for i in "abca"] == [True, True, True, False]
    assert seen.add("d") and len(seen) == 3
    assert seen.add("a")  # forgotten: the oldest went first


def test_every_shared_response_converts_cleanly():
    folder = require_shared("fixtures", "youtube")
    for path in sorted(folder.glob("*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, list):
            actions = data
        elif "continuationContents" in data:
            actions = data["continuationContents"]["liveChatContinuation"].get("actions", [])
        elif "contents" in data:
            actions = data["contents"]["liveChatRenderer"].get("actions", [])
        else:
            actions = []
        for action in actions:
            for converted in expand_action(action):
                assert converted is not None, path


# -- YouTube as it is in 2026 ----------------------------------------------------------------------------------


def test_every_2026_action_has_its_outcome():
    named = y2026.named_actions()
    assert set(named) == set(y2026.OUTCOMES)
    for name, action in named.items():
        [converted] = expand_action(action)
        outcome = y2026.OUTCOMES[name]
        if isinstance(outcome, CommentKind):
            assert converted.kind is outcome, name
            assert converted.id == y2026.item_id(action), name
        else:
            assert converted.reason == outcome, name
            assert outcome in IGNORED_REASONS, name


def test_a_2026_first_page_has_texts_with_chips_a_summary_and_a_notice():
    page = y2026.first_page()
    converted = [c for a in y2026.page_actions(page) for c in expand_action(a)]
    texts = {c.id: c.text for c in converted if not isinstance(c, Ignored)}
    assert len(texts) == y2026.FIRST_PAGE_TEXTS
    assert Counter(c.reason for c in converted if isinstance(c, Ignored)) == y2026.FIRST_PAGE_PASSED_OVER
    chipped = y2026.chipped_texts(page)
    assert len(chipped) == y2026.FIRST_PAGE_CHIPS
    for comment_id, (chip, runs) in chipped.items():
        assert chip.startswith("#") and texts[comment_id] == runs and chip not in texts[comment_id]
    summary = next(c for c in converted if isinstance(c, Ignored) and c.reason == "chat_summary")
    assert summary.text.startswith("Viewers in the chat are saying") and "Chat summary" not in summary.text


def test_a_jewels_gift_is_a_paid_comment_with_its_gift_and_price():
    named = y2026.named_actions()
    [gold] = expand_action(named["ActionTestData.GiftMessageViewModelAction"], offset_s=2.0)
    assert gold.kind is CommentKind.JEWELS and gold.kind.is_paid
    assert gold.author.name == "@yaniescobar2170" and gold.author.channel_id == ""  # no channel id is sent
    assert (gold.gift_name, gold.amount, gold.currency) == ("Gold coin", 10.0, "JEWELS")
    assert gold.text == "sent Gold coin for 10 Jewels" and gold.offset_s == 2.0
    [sparkles] = expand_action(named["ActionTestData.GiftMessageViewModelWithAvatarAndGiftImage"])
    assert (sparkles.author.name, sparkles.gift_name, sparkles.amount, sparkles.currency) == (
        "@franciscosaranteheredia1890", "Sparkles", None, "JEWELS")


@pytest.mark.parametrize(("line", "label", "expected"), [
    ("sent Gold coin for 10 Jewels", "", ("Gold coin", 10)),
    ("sent Girl power for 50 Jewels", "", ("Girl power", 50)),
    ("sent 100 for 2 Jewels", "", ("100", 2)),
    ("sent Big cake for 1,000 Jewels", "", ("Big cake", 1000)),
    ("sent Sparkles", "@x sent a gift, Sparkles", ("Sparkles", None)),
    ("Sent a gift", "@gift_sender sent a gift, Image of a star", ("a star", None)),
    ("ゴールドコインを贈りました（10 ジュエル）", "", (None, 10)),
    ("", "", (None, None)),
])
def test_jewels_lines(line, label, expected):
    assert parse_jewels_line(line, label) == expected


def test_2026_banners_polls_and_goals_say_what_they_are():
    named = y2026.named_actions()

    def one(name: str) -> Ignored:
        [converted] = expand_action(named[name])
        return converted

    pinned = one("ActionTestData.AddBannerPinnedMessage_InugamiKorone")
    assert pinned.reason == "pinned" and pinned.text.startswith("いっぱいいっぱいありがとう～！")
    assert one("ActionTestData.AddBannerChatSummary").text.startswith("Viewers in the chat are saying happy birthday")
    assert one("ActionTestData.ShowPollAction_OuroKronii_WallVsFloor") == Ignored("poll", "for the wood",
                                                                                   ("wall", "floor"))
    assert one("RawActionLog9To15TestData.UpdateLiveChatPollActionFromLog") == Ignored(
        "poll", "like & turn on notif", ("yes", "okayy"))
    assert one("ActionTestData.ShowPanelActionNewPoll") == Ignored("poll", "", ("LET IN", "OUT"))  # no question
    result = one("ActionTestData.ViewerEngagementPollResult_OuroKronii_WallVsFloor")
    assert result.reason == "poll" and result.text.splitlines()[:3] == ["for the wood", "floor (53%)", "wall (47%)"]
    assert one("ActionTestData.AddBannerRedirectCommand") == Ignored("banner")
    assert one("ActionTestData.CreatorGoalTickerChip") == Ignored("creator_goal")
    assert one("ActionTestData.ViewerEngagementSubscribersOnly") == Ignored("engagement")
    assert convert_action({"addChatItemAction": {"item": {"liveChatModeChangeMessageRenderer": {}}}}) == \
        Ignored("mode_change")
    assert convert_action({"updateOrAddInteractivityWidgetAction": {}}) == Ignored("gift_animation")
    # A banner or poll of a shape we do not know is still passed over under its reason.
    assert convert_action({"addBannerToLiveChatCommand": {"bannerRenderer": 3}}) == Ignored("banner")
    assert convert_action({"updateLiveChatPollAction": {"pollToUpdate": {"pollRenderer": {"choices": [1]}}}}) == \
        Ignored("poll", "", ("",))


@pytest.mark.parametrize(("vm", "reason"), [
    ({"text": {"content": "sent Gold coin for 10 Jewels"}}, "no 'id'"),
    ({"id": "g", "text": "sent Gold coin"}, "view-model text"),
    ({"id": "g", "text": {"content": 5}}, "'content' is not a string"),
    ({"id": "g", "authorName": {"content": ["x"]}}, "'content' is not a string"),
])
def test_a_malformed_jewels_gift_says_why(vm, reason):
    with pytest.raises(ValueError, match=reason):
        convert_action({"addChatItemAction": {"item": {"giftMessageViewModel": vm}}})
