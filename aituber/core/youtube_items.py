"""YouTube live-chat JSON (the `get_live_chat` renderers) -> our `Comment`, without I/O.

YouTube sends chat as *actions*. `addChatItemAction.item` holds one renderer keyed by its kind
(`liveChatTextMessageRenderer`, `liveChatPaidMessageRenderer`, ...); `markChatItemAsDeletedAction`
removes one item, `markChatItemsByAuthorAsDeletedAction` all of one viewer's; tickers, banners,
polls and placeholders carry no new comment. `convert_action` turns one action into a chat item, a
by-author deletion, or an `Ignored` with the reason; anything malformed raises ValueError with a
short reason. The recorded-log formats (yt-dlp, pytchat's archive) and the live source share it.

Items seen in 2026: Jewels gifts (`giftMessageViewModel`, a view model with `{"content": ...}`
texts instead of runs) become `CommentKind.JEWELS`; text messages may carry leaderboard chips
(`beforeContentButtons`, "CROWN #3") beside their message, never in it; banners are pinned messages,
AI chat summaries or links to other streams; creator goals come as ticker chips.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aituber.core.comment import JEWELS_CURRENCY, Author, Comment, CommentDeleted, CommentKind
from aituber.core.sanitize import MAX_ID_CHARS, MAX_TEXT_CHARS, clean_comment, clean_deleted, clean_line, clean_text


@dataclass(frozen=True, slots=True)
class Ignored:
    """An action that is no chat item (a ticker, a banner, a placeholder...); `reason` names it."""

    reason: str
    text: str = ""
    """What a pinned message, chat summary or poll (its question) says, as context; else ""."""
    options: tuple[str, ...] = ()
    """A poll's options."""


@dataclass(frozen=True, slots=True)
class AuthorCommentsDeleted:
    """A moderator removed every message of one viewer (a ban or a timeout)."""

    channel_id: str
    offset_s: float | None = None


Converted = Comment | CommentDeleted | AuthorCommentsDeleted | Ignored

PLACEHOLDER = Ignored("placeholder")
TICKER = Ignored("ticker")
BANNER = Ignored("banner")
"""A banner other than a pinned message or a chat summary (a link to another stream), or its removal."""
POLL = Ignored("poll")
ENGAGEMENT = Ignored("engagement")
"""YouTube's notices in the chat: welcome and guidelines, subscribers-only mode."""
MODE_CHANGE = Ignored("mode_change")
"""Slow mode, members-only mode... switched on or off."""
CREATOR_GOAL = Ignored("creator_goal")
GIFT_ANIMATION = Ignored("gift_animation")
"""The on-stream animation of a Jewels gift; the gift itself comes as its own chat item."""
SYSTEM = Ignored("system_message")
DONATION = Ignored("donation")
OTHER = Ignored("other")

#: Every reason an action is passed over for (`SourceStats.ignored` also counts "duplicate" and
#: "before_start", which the sources add).
IGNORED_REASONS = ("placeholder", "ticker", "banner", "pinned", "chat_summary", "poll", "engagement",
                   "mode_change", "creator_goal", "gift_animation", "system_message", "donation", "other")

# -- money ---------------------------------------------------------------------------------------

#: Currency symbols as YouTube writes them before (or after) a super chat's amount -> ISO 4217.
#: pytchat 0.5.5's table (processors/default/renderer/currency.py: its "CHF\xa0"-style keys lose
#: the no-break space here) plus the symbols YouTube uses in other display locales.
CURRENCY_SYMBOLS: dict[str, str] = {
    "$": "USD", "US$": "USD", "A$": "AUD", "CA$": "CAD", "HK$": "HKD", "MX$": "MXN", "NT$": "TWD",
    "NZ$": "NZD", "R$": "BRL", "£": "GBP", "€": "EUR", "₹": "INR", "₩": "KRW", "￦": "KRW",
    "￥": "JPY", "¥": "JPY", "JP¥": "JPY", "円": "JPY", "CN¥": "CNY", "₱": "PHP", "₫": "VND",
    "₪": "ILS", "₺": "TRY", "₽": "RUB", "฿": "THB", "zł": "PLN", "Rp": "IDR", "RM": "MYR",
    "S/": "PEN", "S/.": "PEN", "Kč": "CZK", "Ft": "HUF", "₴": "UAH", "₦": "NGN", "₡": "CRC",
    "CHF": "CHF", "COP": "COP", "HUF": "HUF", "PHP": "PHP", "PLN": "PLN", "RUB": "RUB", "SEK": "SEK",
    "PEN": "PEN", "ARS": "ARS", "CLP": "CLP", "NOK": "NOK", "BAM": "BAM", "SGD": "SGD",
}

#: Currencies without minor units: in these, "1.000" is a thousand.
_ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "COP", "HUF", "IDR", "ISK", "PYG", "UGX", "TWD"})
_SPACES = " \u00a0\u202f\t"


def currency_code(symbol: str) -> str:
    """A currency symbol or code -> ISO 4217 ("￥" -> "JPY"); unknown symbols come back stripped."""
    s = symbol.strip(_SPACES)
    code = CURRENCY_SYMBOLS.get(s)
    if code is not None:
        return code
    if len(s) == 3 and s.isascii() and s.isalpha():
        return s.upper()
    return s


def parse_amount(text: str) -> tuple[float, str]:
    """"￥1,000" -> (1000.0, "JPY"); "$30.00" -> (30.0, "USD"); "5,00 €" -> (5.0, "EUR").

    The symbol may stand before or after the number; unknown symbols are kept as written
    (stripped). Raises ValueError when there is no number.
    """
    first = last = -1
    for i, ch in enumerate(text):
        if "0" <= ch <= "9":
            if first < 0:
                first = i
            last = i
    if first < 0:
        raise ValueError(f"no amount in {text!r}")
    symbol = (text[:first] + text[last + 1:]).strip(_SPACES)
    code = currency_code(symbol)
    number = text[first:last + 1]
    for space in _SPACES:
        number = number.replace(space, "")
    return _parse_number(number, code, text), code


def _parse_number(number: str, code: str, text: str) -> float:
    comma, dot = "," in number, "." in number
    if comma and dot:  # the later one is the decimal separator
        if number.rfind(",") > number.rfind("."):
            number = number.replace(".", "").replace(",", ".")
        else:
            number = number.replace(",", "")
    elif comma:
        groups = number.split(",")
        if len(groups) > 2 or all(len(g) == 3 for g in groups[1:]):
            number = number.replace(",", "")
        else:
            number = number.replace(",", ".")
    elif dot:
        groups = number.split(".")
        if len(groups) > 2 or (code in _ZERO_DECIMAL and len(groups[1]) == 3):
            number = number.replace(".", "")
    try:
        return float(number)
    except ValueError:
        raise ValueError(f"unreadable amount {text!r}") from None


# -- runs, authors -----------------------------------------------------------------------------------


def _emoji_text(emoji: Any) -> str:
    """An emoji run as text: its first shortcut (":smile:", ":_mikaHeart:"), else the character."""
    if not isinstance(emoji, dict):
        raise ValueError("an emoji run is not an object")
    shortcuts = emoji.get("shortcuts")
    if shortcuts and isinstance(shortcuts, list) and isinstance(shortcuts[0], str):
        return shortcuts[0]
    emoji_id = emoji.get("emojiId")
    if isinstance(emoji_id, str) and not emoji.get("isCustomEmoji") and "/" not in emoji_id:
        return emoji_id
    terms = emoji.get("searchTerms")
    if terms and isinstance(terms, list) and isinstance(terms[0], str):
        return f":{terms[0]}:"
    return ""


def runs_text(value: Any) -> str:
    """`{"runs": [{"text": ...}, {"emoji": ...}]}` or `{"simpleText": ...}` -> plain text."""
    if value is None:
        return ""
    if not isinstance(value, dict):
        raise ValueError("a message is not an object")
    runs = value.get("runs")
    if runs is None:
        simple = value.get("simpleText", "")
        if not isinstance(simple, str):
            raise ValueError("'simpleText' is not a string")
        return simple
    if not isinstance(runs, list):
        raise ValueError("'runs' is not a list")
    parts: list[str] = []
    for run in runs:
        if not isinstance(run, dict):
            raise ValueError("a run is not an object")
        text = run.get("text")
        if text is None:
            parts.append(_emoji_text(run["emoji"]) if "emoji" in run else "")
        elif isinstance(text, str):
            parts.append(text)
        else:
            raise ValueError("a run's 'text' is not a string")
    return parts[0] if len(parts) == 1 else "".join(parts)


_VERIFIED_ICONS = frozenset({"VERIFIED", "CHECK_CIRCLE_THICK", "OFFICIAL_ARTIST_BADGE"})


def author_of(renderer: dict[str, Any], *, member: bool = False) -> Author:
    """The author of a renderer: name, channel id, and the flags from its badges.

    A badge with an icon says OWNER, MODERATOR or VERIFIED; a badge with a custom thumbnail is
    the channel's membership badge.
    """
    name = renderer.get("authorName")
    if name is None:
        name_text = ""
    elif isinstance(name, dict):
        name_text = name.get("simpleText", "")
        if not isinstance(name_text, str):
            raise ValueError("'authorName.simpleText' is not a string")
    else:
        raise ValueError("'authorName' is not an object")
    channel_id = renderer.get("authorExternalChannelId", "")
    if not isinstance(channel_id, str):
        raise ValueError("'authorExternalChannelId' is not a string")
    owner = moderator = verified = False
    badges = renderer.get("authorBadges")
    if badges:
        if not isinstance(badges, list):
            raise ValueError("'authorBadges' is not a list")
        for badge in badges:
            badge_renderer = badge.get("liveChatAuthorBadgeRenderer") if isinstance(badge, dict) else None
            if not isinstance(badge_renderer, dict):
                continue
            icon = badge_renderer.get("icon")
            if isinstance(icon, dict):
                icon_type = icon.get("iconType")
                if icon_type == "OWNER":
                    owner = True
                elif icon_type == "MODERATOR":
                    moderator = True
                elif icon_type in _VERIFIED_ICONS:
                    verified = True
            if "customThumbnail" in badge_renderer:
                member = True
    return Author(name=name_text, channel_id=channel_id, is_owner=owner, is_moderator=moderator,
                  is_member=member, is_verified=verified)


def _timestamp_s(renderer: dict[str, Any]) -> float:
    usec = renderer.get("timestampUsec")
    if usec is None:
        return 0.0
    try:
        return int(usec) / 1_000_000
    except (TypeError, ValueError):
        raise ValueError(f"'timestampUsec' {usec!r} is not a number") from None


def _item_id(renderer: dict[str, Any]) -> str:
    item_id = renderer.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise ValueError("the item has no 'id'")
    return item_id


def _amount_of(renderer: dict[str, Any]) -> tuple[float, str]:
    amount_text = runs_text(renderer.get("purchaseAmountText"))
    if not amount_text:
        raise ValueError("a paid item has no 'purchaseAmountText'")
    return parse_amount(amount_text)


# -- items -------------------------------------------------------------------------------------------


def _text_message(r: dict[str, Any], offset_s: float | None) -> Comment:
    return Comment(id=_item_id(r), author=author_of(r), text=runs_text(r.get("message")),
                   timestamp=_timestamp_s(r), offset_s=offset_s)


def _paid_message(r: dict[str, Any], offset_s: float | None) -> Comment:
    amount, currency = _amount_of(r)
    return Comment(id=_item_id(r), author=author_of(r), text=runs_text(r.get("message")),
                   kind=CommentKind.SUPER_CHAT, amount=amount, currency=currency,
                   timestamp=_timestamp_s(r), offset_s=offset_s)


def _paid_sticker(r: dict[str, Any], offset_s: float | None) -> Comment:
    amount, currency = _amount_of(r)
    return Comment(id=_item_id(r), author=author_of(r), text="", kind=CommentKind.SUPER_STICKER,
                   amount=amount, currency=currency, timestamp=_timestamp_s(r), offset_s=offset_s)


def _membership(r: dict[str, Any], offset_s: float | None) -> Comment:
    """A new member ("新規メンバー") or a milestone ("メンバー歴 6 か月") with the viewer's message.

    The text is what the viewer wrote on a milestone; without one, YouTube's line about it
    (the header: "上級エンジニア へようこそ！", "Member for 6 months").
    """
    text = runs_text(r.get("message"))
    if not text:
        text = runs_text(r.get("headerPrimaryText")) or runs_text(r.get("headerSubtext"))
    return Comment(id=_item_id(r), author=author_of(r, member=True), text=text,
                   kind=CommentKind.MEMBERSHIP, timestamp=_timestamp_s(r), offset_s=offset_s)


def _legacy_paid(r: dict[str, Any], offset_s: float | None) -> Comment:
    """The old new-member announcement: `eventText` / `detailText`."""
    text = runs_text(r.get("detailText")) or runs_text(r.get("eventText"))
    return Comment(id=_item_id(r), author=author_of(r, member=True), text=text,
                   kind=CommentKind.MEMBERSHIP, timestamp=_timestamp_s(r), offset_s=offset_s)


def _gift_purchase(r: dict[str, Any], offset_s: float | None) -> Comment:
    """A viewer gave memberships to others ("10 件の 上級エンジニア のメンバーシップ ギフトを贈りました").

    The author sits in `header.liveChatSponsorshipsHeaderRenderer`; the text is YouTube's line.
    """
    header = r.get("header")
    inner = header.get("liveChatSponsorshipsHeaderRenderer") if isinstance(header, dict) else None
    if not isinstance(inner, dict):
        inner = r
    author = author_of(inner)
    if not author.channel_id:
        channel_id = r.get("authorExternalChannelId", "")
        if not isinstance(channel_id, str):
            raise ValueError("'authorExternalChannelId' is not a string")
        author = Author(name=author.name, channel_id=channel_id, is_owner=author.is_owner,
                        is_moderator=author.is_moderator, is_member=author.is_member,
                        is_verified=author.is_verified)
    return Comment(id=_item_id(r), author=author, text=runs_text(inner.get("primaryText")),
                   kind=CommentKind.GIFT, timestamp=_timestamp_s(r), offset_s=offset_s)


def _gift_redemption(r: dict[str, Any], offset_s: float | None) -> Comment:
    """A viewer received a gifted membership ("was gifted a membership by ...")."""
    return Comment(id=_item_id(r), author=author_of(r, member=True), text=runs_text(r.get("message")),
                   kind=CommentKind.MEMBERSHIP, timestamp=_timestamp_s(r), offset_s=offset_s)


def view_model_text(value: Any) -> str:
    """A view model's text, `{"content": "...", "styleRuns": [...]}` -> its content."""
    if value is None:
        return ""
    if not isinstance(value, dict):
        raise ValueError("a view-model text is not an object")
    content = value.get("content", "")
    if not isinstance(content, str):
        raise ValueError("a view-model text's 'content' is not a string")
    return content


_JEWELS_LINE = re.compile(r"\s*sent\s+(?P<gift>.+?)(?:\s+for\s+(?P<jewels>\d[\d,.]*)\s+jewels?)?\s*",
                          re.IGNORECASE)
_JEWEL_COUNT = re.compile(r"(\d[\d,.]*)\s*(?:jewels?|ジュエル)", re.IGNORECASE)


def parse_jewels_line(line: str, a11y_label: str = "") -> tuple[str | None, int | None]:
    """YouTube's line about a Jewels gift -> (gift name, Jewels), either None when it does not say.

    "sent Gold coin for 10 Jewels" -> ("Gold coin", 10); "sent Sparkles" -> ("Sparkles", None). Other
    wordings ("Sent a gift", other languages): the Jewels from any "<n> Jewels" (or "ジュエル"), the
    gift from the image's label ("@name sent a gift, Sparkles", "..., Image of a star").
    """
    match = _JEWELS_LINE.fullmatch(line)
    if match is not None and match.group("gift").lower() != "a gift":
        count = match.group("jewels")
        return match.group("gift"), _jewels_number(count) if count else None
    count_match = _JEWEL_COUNT.search(line)
    jewels = _jewels_number(count_match.group(1)) if count_match else None
    gift = a11y_label.rpartition(", ")[2].strip().removeprefix("Image of ") if ", " in a11y_label else ""
    return gift or None, jewels


def _jewels_number(text: str) -> int | None:
    digits = text.replace(",", "").replace(".", "")
    return int(digits) if digits.isdigit() else None


def _jewels_gift(vm: dict[str, Any], offset_s: float | None) -> Comment:
    """A Jewels gift (`giftMessageViewModel`): the sender's @handle (no channel id), YouTube's line
    ("sent Gold coin for 10 Jewels") as the text, the gift's name and its price in Jewels."""
    text = view_model_text(vm.get("text"))
    label = vm.get("giftImageA11yLabel")
    gift, jewels = parse_jewels_line(text, label if isinstance(label, str) else "")
    channel_id = vm.get("authorExternalChannelId", "")
    if not isinstance(channel_id, str):
        raise ValueError("'authorExternalChannelId' is not a string")
    author = Author(name=view_model_text(vm.get("authorName")).strip(), channel_id=channel_id)
    return Comment(id=_item_id(vm), author=author, text=text, kind=CommentKind.JEWELS,
                   amount=None if jewels is None else float(jewels), currency=JEWELS_CURRENCY,
                   timestamp=_timestamp_s(vm), offset_s=offset_s, gift_name=gift)


_ITEM_CONVERTERS = {
    "liveChatTextMessageRenderer": _text_message,
    "liveChatPaidMessageRenderer": _paid_message,
    "liveChatPaidStickerRenderer": _paid_sticker,
    "liveChatMembershipItemRenderer": _membership,
    "liveChatLegacyPaidMessageRenderer": _legacy_paid,
    "liveChatSponsorshipsGiftPurchaseAnnouncementRenderer": _gift_purchase,
    "liveChatSponsorshipsGiftRedemptionAnnouncementRenderer": _gift_redemption,
    "giftMessageViewModel": _jewels_gift,
}

_IGNORED_ITEMS = {
    "liveChatPlaceholderItemRenderer": PLACEHOLDER,
    "liveChatViewerEngagementMessageRenderer": ENGAGEMENT,
    "liveChatModeChangeMessageRenderer": MODE_CHANGE,
    "liveChatModerationMessageRenderer": SYSTEM,
    "liveChatAutoModMessageRenderer": SYSTEM,
    "liveChatPurchasedProductMessageRenderer": SYSTEM,
    "liveChatDonationAnnouncementRenderer": DONATION,
}

_IGNORED_ACTIONS = {
    "addLiveChatTickerItemAction": TICKER,
    "removeBannerForLiveChatCommand": BANNER,
    "closeLiveChatActionPanelAction": POLL,
    "showLiveChatTooltipCommand": SYSTEM,
    "addLiveChatTextMessageFromTemplateAction": SYSTEM,
    "liveChatReportModerationStateCommand": SYSTEM,
    "showCreatorGoalTickerChipCommand": CREATOR_GOAL,
    "addInteractivityWidgetAction": GIFT_ANIMATION,
    "updateOrAddInteractivityWidgetAction": GIFT_ANIMATION,
}


# -- what passed-over items say (context only: a shape we do not know gives "", never an error) --------


def _get(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _context_text(value: Any) -> str:
    try:
        return runs_text(value).strip()
    except (ValueError, KeyError):
        return ""


def _banner(command: Any) -> Ignored:
    """`addBannerToLiveChatCommand`: a pinned message, an AI chat summary, or another banner."""
    banner = _get(command, "bannerRenderer", "liveChatBannerRenderer")
    contents = _get(banner, "contents")
    if not isinstance(contents, dict):
        return BANNER
    banner_type = _get(banner, "bannerType")
    summary = contents.get("liveChatBannerChatSummaryRenderer")
    if summary is not None or banner_type == "LIVE_CHAT_BANNER_TYPE_CHAT_SUMMARY":
        # "Chat summary\nAuto-generated experiment • Quality may vary\n<the summary>"
        lines = _context_text(_get(summary, "chatSummary")).splitlines()
        return Ignored("chat_summary", lines[-1].strip() if lines else "")
    pinned = contents.get("liveChatTextMessageRenderer")
    if pinned is not None or banner_type == "LIVE_CHAT_BANNER_TYPE_PINNED_MESSAGE":
        return Ignored("pinned", _context_text(_get(pinned, "message")))
    return BANNER


def _poll(poll: Any) -> Ignored:
    """A `pollRenderer`: its question and options."""
    question = _context_text(_get(poll, "header", "pollHeaderRenderer", "pollQuestion"))
    choices = _get(poll, "choices")
    options = tuple(_context_text(_get(choice, "text")) for choice in choices) if isinstance(choices, list) else ()
    return Ignored("poll", question, options)


def _engagement(renderer: Any) -> Ignored:
    """YouTube's notice; a poll's result is one too (icon POLL: "question\noption (53%)\n...")."""
    if _get(renderer, "icon", "iconType") == "POLL":
        return Ignored("poll", _context_text(_get(renderer, "message")))
    return ENGAGEMENT


def _ignored_action(key: str, value: Any) -> Ignored | None:
    ignored = _IGNORED_ACTIONS.get(key)
    if ignored is not None:
        return ignored
    if key == "addBannerToLiveChatCommand":
        return _banner(value)
    if key == "showLiveChatActionPanelAction":
        return _poll(_get(value, "panelToShow", "liveChatActionPanelRenderer", "contents", "pollRenderer"))
    if key == "updateLiveChatPollAction":
        return _poll(_get(value, "pollToUpdate", "pollRenderer"))
    if "CreatorGoal" in key:  # show / update / remove the creator-goal chip
        return CREATOR_GOAL
    return None


def convert_item(item: Any, offset_s: float | None = None) -> Comment | Ignored:
    """One `item` (`{"<kind>Renderer": {...}}`) -> a Comment, or Ignored for kinds with no comment."""
    if not isinstance(item, dict) or not item:
        raise ValueError("the item is not an object")
    for key, renderer in item.items():
        convert = _ITEM_CONVERTERS.get(key)
        if convert is not None:
            if not isinstance(renderer, dict):
                raise ValueError(f"'{key}' is not an object")
            return convert(renderer, offset_s)
        ignored = _IGNORED_ITEMS.get(key)
        if ignored is not None:
            return _engagement(renderer) if ignored is ENGAGEMENT else ignored
    return OTHER


def clean_converted(converted: Converted) -> Converted:
    """A converted item with its text made valid (`aituber.core.sanitize`); the same object when it was."""
    kind = type(converted)
    if kind is Comment:
        return clean_comment(converted)  # type: ignore[arg-type]
    if kind is CommentDeleted:
        return clean_deleted(converted)  # type: ignore[arg-type]
    if kind is AuthorCommentsDeleted:
        channel_id = clean_line(converted.channel_id, MAX_ID_CHARS)  # type: ignore[union-attr]
        return converted if channel_id is converted.channel_id else AuthorCommentsDeleted(  # type: ignore[union-attr]
            channel_id, converted.offset_s)  # type: ignore[union-attr]
    if kind is Ignored and (converted.text or converted.options):  # type: ignore[union-attr]
        text = clean_text(converted.text, MAX_TEXT_CHARS)  # type: ignore[union-attr]
        options = tuple(clean_text(o, MAX_TEXT_CHARS) for o in converted.options)  # type: ignore[union-attr]
        if text is not converted.text or options != converted.options:  # type: ignore[union-attr]
            return Ignored(converted.reason, text, options)  # type: ignore[union-attr]
    return converted


def convert_action(action: Any, offset_s: float | None = None) -> Converted:
    """One chat action -> a Comment, a CommentDeleted, an AuthorCommentsDeleted, or Ignored, its text
    made valid (lone surrogates, controls... see `aituber.core.sanitize`).

    Raises ValueError (with a short reason) for a malformed action.
    """
    return clean_converted(_convert_action(action, offset_s))


def _convert_action(action: Any, offset_s: float | None) -> Converted:
    if not isinstance(action, dict):
        raise ValueError("the action is not an object")
    add = action.get("addChatItemAction")
    if add is not None:
        if not isinstance(add, dict):
            raise ValueError("'addChatItemAction' is not an object")
        return convert_item(add.get("item"), offset_s)
    deleted = action.get("markChatItemAsDeletedAction")
    if deleted is not None:
        target = deleted.get("targetItemId") if isinstance(deleted, dict) else None
        if not isinstance(target, str):
            raise ValueError("'markChatItemAsDeletedAction' has no 'targetItemId'")
        return CommentDeleted(comment_id=target, offset_s=offset_s)
    by_author = action.get("markChatItemsByAuthorAsDeletedAction")
    if by_author is not None:
        channel_id = by_author.get("externalChannelId") if isinstance(by_author, dict) else None
        if not isinstance(channel_id, str):
            raise ValueError("'markChatItemsByAuthorAsDeletedAction' has no 'externalChannelId'")
        return AuthorCommentsDeleted(channel_id=channel_id, offset_s=offset_s)
    replace = action.get("replaceChatItemAction")
    if replace is not None:
        # A placeholder being filled in with the real message (or replaced by another placeholder).
        if not isinstance(replace, dict):
            raise ValueError("'replaceChatItemAction' is not an object")
        return convert_item(replace.get("replacementItem"), offset_s)
    for key, value in action.items():
        ignored = _ignored_action(key, value)
        if ignored is not None:
            return ignored
    return OTHER


def convert_actions(actions: Iterable[Any], offset_s: float | None = None) -> list[Converted]:
    """Several actions sharing one offset (a yt-dlp line, a replay response entry)."""
    return [convert_action(action, offset_s) for action in actions]


def expand_action(action: Any, offset_s: float | None = None) -> list[Converted]:
    """An action as a response carries it: a replay response wraps its actions in
    `replayChatItemAction` (with the video offset), a live one does not."""
    replay = action.get("replayChatItemAction") if isinstance(action, dict) else None
    if replay is None:
        return [convert_action(action, offset_s)]
    if not isinstance(replay, dict) or not isinstance(replay.get("actions"), list):
        raise ValueError("'replayChatItemAction' has no 'actions' list")
    return convert_actions(replay["actions"], offset_ms_to_s(replay.get("videoOffsetTimeMsec")))


def offset_ms_to_s(value: Any) -> float | None:
    """`videoOffsetTimeMsec` ("101308", may be negative) -> seconds; None when absent."""
    if value is None:
        return None
    try:
        return int(value) / 1000
    except (TypeError, ValueError):
        try:
            seconds = float(value) / 1000
        except (TypeError, ValueError):
            raise ValueError(f"'videoOffsetTimeMsec' {value!r} is not a number") from None
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            raise ValueError(f"'videoOffsetTimeMsec' {value!r} is not a number") from None
        return seconds


# -- bounded memories ----------------------------------------------------------------------------------


class RecentIds:
    """Remembers the last `size` ids: is this one new? (De-duplication across reconnects.)"""

    def __init__(self, size: int = 20_000) -> None:
        self._order: deque[str] = deque()
        self._ids: set[str] = set()
        self._size = size

    def add(self, item_id: str) -> bool:
        """True the first time an id is seen (within the last `size`), False for a repeat."""
        if item_id in self._ids:
            return False
        self._ids.add(item_id)
        self._order.append(item_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True

    def __len__(self) -> int:
        return len(self._ids)


class RecentAuthors:
    """The last `size` comments' (id, channel id), to expand a by-author deletion into ids."""

    def __init__(self, size: int = 2_000) -> None:
        self._recent: deque[tuple[str, str]] = deque(maxlen=size)

    def note(self, comment: Comment) -> None:
        self._recent.append((comment.id, comment.author.channel_id))

    def deletions(self, event: AuthorCommentsDeleted) -> list[CommentDeleted]:
        if not event.channel_id:
            return []
        return [CommentDeleted(comment_id=cid, offset_s=event.offset_s)
                for cid, channel in self._recent if channel == event.channel_id]
