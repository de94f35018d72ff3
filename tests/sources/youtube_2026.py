"""The 2026 recordings in ../shared/fixtures/youtube/2026, and what the bot makes of each item.

`OUTCOMES` is written out by hand from the recorded JSON (not from the converter): for every
recorded action, the comment kind it becomes or the reason it is passed over for.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from aituber.core.comment import CommentKind
from tests.conftest import require_shared

FIRST_PAGE = "2026/chat-downloader-fork/live_chat_first_page.json"
ACTIONS = "2026/YTLiveChat/actions.json"

Outcome = CommentKind | str
"""A comment of that kind, or passed over for that reason."""

TEXT, MEMBERSHIP, STICKER, JEWELS = (CommentKind.TEXT, CommentKind.MEMBERSHIP, CommentKind.SUPER_STICKER,
                                     CommentKind.JEWELS)

OUTCOMES: dict[str, Outcome] = {
    "ActionTestData.ViewerEngagementSubscribersOnly": "engagement",
    "ActionTestData.ViewerEngagementSubscribersOnly20Min": "engagement",
    "ActionTestData.ViewerEngagementCommunityGuidelines": "engagement",
    "ActionTestData.ViewerEngagementPollResult": "poll",  # an engagement message with the POLL icon
    "ActionTestData.AddBannerRedirectCommand": "banner",
    "ActionTestData.AddBannerRedirectLearnMore": "banner",
    "ActionTestData.AddBannerChatSummary": "chat_summary",
    "ActionTestData.AddBannerPinnedMessage_InugamiKorone": "pinned",
    "ActionTestData.AddBannerRedirectLearnMore_KureijiOllie": "banner",
    "ActionTestData.AddBannerRedirectGoNow_UsadaPekora": "banner",
    "ActionTestData.TextMessageWithLeaderboardRank_SinMikity": TEXT,
    "ActionTestData.ReportModerationStateEmpty": "system_message",
    "ActionTestData.ShowPanelActionNewPoll": "poll",
    "ActionTestData.ShowPollAction_OuroKronii_WallVsFloor": "poll",
    "ActionTestData.UpdatePollAction_OuroKronii_ZeroVotes": "poll",
    "ActionTestData.UpdatePollAction_OuroKronii_MidPoll_Wall45_Floor55": "poll",
    "ActionTestData.UpdatePollAction_OuroKronii_FinalResult_Wall47_Floor53": "poll",
    "ActionTestData.ClosePollPanel_OuroKronii": "poll",
    "ActionTestData.ViewerEngagementPollResult_OuroKronii_WallVsFloor": "poll",
    "ActionTestData.RemoveBanner": "banner",
    "ActionTestData.CloseLiveChatActionPanel": "poll",
    "ActionTestData.ReplaceChatItemWithText": TEXT,
    "ActionTestData.UpdatePollActionZeroVotes": "poll",
    "ActionTestData.GiftMessageViewModelWithAvatarAndGiftImage": JEWELS,
    "ActionTestData.GiftMessageViewModelAction": JEWELS,
    "ActionTestData.CreatorGoalTickerChip": "creator_goal",
    "ActionTestData.CreatorGoalTickerChipWithTrackingParams": "creator_goal",
    "RawActionTestData.TickerPaidMessageFromLog8": "ticker",
    "RawActionTestData.TickerPaidMessageWithAuthorUsername": "ticker",
    "RawActionTestData.TickerSponsorItemFromLog8": "ticker",
    "RawActionLog9To15TestData.UpdateLiveChatPollActionFromLog": "poll",
    "RawActionLog9To15TestData.ShowLiveChatActionPanelActionFromLog": "poll",
    "RawActionLog9To15TestData.AddBannerToLiveChatCommandFromLog": "banner",
    "RawActionLog9To15TestData.TickerGiftPurchaseFromLog": "ticker",
    "RawActionLog9To15TestData.NewMembershipWelcomeFromLog11": MEMBERSHIP,
    "SuperChatTestData.PaidStickerWithMemberBadge": STICKER,
    "SuperChatTestData.PaidStickerWithLowerBumper": STICKER,
    # The bare liveChatMembershipItemRenderer bodies, wrapped in an addChatItemAction.
    "MembershipTestData.NewMemberFromLatestLogWithNewMemberBadge": MEMBERSHIP,
    "MembershipTestData.NewMemberFromLog6WithMemberTenureBadge": MEMBERSHIP,
    "MembershipTestData.RealUpgrade_Runs_CardinalArcher": MEMBERSHIP,
}

FIRST_PAGE_TEXTS = 69
FIRST_PAGE_CHIPS = 8
FIRST_PAGE_PASSED_OVER = Counter({"engagement": 1, "chat_summary": 1})


def shared_2026(name: str) -> Any:
    return json.loads((require_shared("fixtures", "youtube") / name).read_text(encoding="utf-8"))


def first_page() -> dict[str, Any]:
    return shared_2026(FIRST_PAGE)


def named_actions() -> dict[str, dict[str, Any]]:
    """Every recorded 2026 action by name, the bare membership bodies wrapped as YouTube sends them."""
    data = shared_2026(ACTIONS)
    actions = dict(data["actions"])
    for name, body in data["bare_renderer_bodies"].items():
        actions[name] = {"addChatItemAction": {"item": {"liveChatMembershipItemRenderer": body}}}
    return actions


def page_actions(response: dict[str, Any]) -> list[dict[str, Any]]:
    return response["continuationContents"]["liveChatContinuation"]["actions"]


def item_id(action: dict[str, Any]) -> str | None:
    """The id of the chat item an action adds (or puts in place of a placeholder), read from the JSON."""
    holder = action.get("addChatItemAction") or action.get("replaceChatItemAction")
    if holder is None:
        return None
    item = holder.get("item") or holder.get("replacementItem")
    return next(iter(item.values()))["id"]


def chipped_texts(response: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Text messages with a leaderboard chip: id -> (the chip's title, the message's own text runs)."""
    out = {}
    for action in page_actions(response):
        renderer = (action.get("addChatItemAction") or {}).get("item", {}).get("liveChatTextMessageRenderer")
        if renderer and renderer.get("beforeContentButtons"):
            title = renderer["beforeContentButtons"][0]["buttonViewModel"]["title"]
            runs = "".join(r.get("text", "") for r in renderer["message"]["runs"])
            out[renderer["id"]] = (title, runs)
    return out
