"""A Jewels gift in a replayed 2026 log, along the demo's path: replay source -> pipeline (real tiny
model) -> console, transcript, overlay (real Debian chromium), then the summary the CLI prints.

The log is tests/fixtures/logs/stream_2026.live_chat.json: yt-dlp lines of actions recorded in 2026
(two Jewels gifts, a super sticker, a new member, a text with a leaderboard chip, banners, polls...).
"""

from __future__ import annotations

import io
import json

import ctranslate2
import pytest

from aituber.app import Pipeline
from aituber.config import load_character
from aituber.core.comment import Author, Comment, CommentKind
from aituber.core.events import CommentSelected, CommentSkipped, ReplyEnded
from aituber.core.messages import event_to_message
from aituber.engine.ct2 import CTranslate2Engine as Engine
from aituber.outputs.console import ConsoleOutput
from aituber.outputs.overlay import OverlayServer
from aituber.outputs.transcript import TranscriptWriter
from aituber.sources.replay import ReplayChatSource
from tests.conftest import FIXTURES, require_chromium

pytestmark = pytest.mark.slow

LOG_2026 = FIXTURES / "logs" / "stream_2026.live_chat.json"
GOLD_COIN = "ChwKGkNPdXhoY09XX3BNREZWZ0kxZ0FkY0tzNlRR"  # "@yaniescobar2170 sent Gold coin for 10 Jewels"
SPARKLES = "ChwKGkNLSEt5ZldtZ3BRREZVc0kxZ0FkTmRVNTBn"  # "@franciscosaranteheredia1890 sent Sparkles"
STICKER = "ChwKGkNLcWltb1NHXzVNREZaYjF3Z1FkVUd3Sl9R"  # "@shujieh2297", NT$14.00
TEXT = "ChwKGkNPckNpTExONkpNREZXWEJ3Z1FkN01RcHVR"  # "孔明の罠", with a "#3" leaderboard chip
NEW_MEMBER = "ChwKGkNLS0p3dldTM3BJREZlWV9yUVlkdnV3TXBn"  # "Welcome to 開拓者組合!"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


class Collect:
    def __init__(self) -> None:
        self.events: list = []

    def publish(self, event) -> None:
        self.events.append(event)

    def of(self, kind) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def log_lines(*item_ids: str) -> str:
    """The lines of the 2026 log that hold these items, in the log's order."""
    return "".join(line + "\n" for line in LOG_2026.read_text(encoding="utf-8").splitlines()
                   if any(f'"id":"{i}"' in line for i in item_ids))


def summary(source: ReplayChatSource, pipeline: Pipeline) -> list[str]:
    """What `aituber demo` / `replay` print at the end."""
    return [source.stats.summary_line(), *pipeline.stats.summary_lines()]


@pytest.fixture
def character(sample_character):
    return load_character(sample_character).character


async def test_jewels_gifts_in_a_replayed_log_are_thanked_and_counted(tiny_model, character, tmp_path):
    """Two Jewels gifts and a super sticker arrive together: a burst of paid items, thanked together
    by name (the character's thanks), counted in the summary, kept in the transcript."""
    source = ReplayChatSource(LOG_2026, fast=True)
    out, console = Collect(), io.StringIO()
    transcript = TranscriptWriter(tmp_path / "t.jsonl")
    await transcript.start()
    with Engine(tiny_model, device="cpu", compute_type="float32") as engine:
        pipeline = Pipeline(character=character, engine=engine, source=source,
                            outputs=[out, ConsoleOutput(console), transcript])
        await pipeline.run()
    await transcript.close()

    [thanks] = [e for e in out.of(ReplyEnded) if e.comment_id.startswith("thanks:")]
    assert thanks.comment_id.removeprefix("thanks:").split(",") == [GOLD_COIN, SPARKLES, STICKER]
    for name in ("@yaniescobar2170", "@franciscosaranteheredia1890", "@shujieh2297"):
        assert f"{name}さん" in thanks.text
    assert {(e.comment.id, e.reason) for e in out.of(CommentSkipped)} == {
        (GOLD_COIN, "paid_thanked"), (SPARKLES, "paid_thanked"), (STICKER, "paid_thanked")}
    assert [e.comment.id for e in out.of(CommentSelected)] == [NEW_MEMBER, TEXT]

    lines = summary(source, pipeline)
    assert lines[0].startswith("source: jewels 2, membership 1, super_sticker 1, text 1; passed over: ")
    assert "pinned 1" in lines[0] and "chat_summary 1" in lines[0] and "unreadable" not in lines[0]
    assert lines[1] == "comments seen 5, answered 3, skipped 3 (paid_thanked 3)"  # the thanks is a reply too

    # The transcript keeps the gifts as they came, and replays them.
    records = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()]
    gold = next(r for r in records if r["type"] == "comment" and r["id"] == GOLD_COIN)
    assert (gold["kind"], gold["gift_name"], gold["amount"], gold["currency"]) == ("jewels", "Gold coin", 10.0,
                                                                                 "JEWELS")
    again = ReplayChatSource(tmp_path / "t.jsonl", fast=True)
    replayed = {c.id: c async for c in again.items() if isinstance(c, Comment)}
    assert replayed[SPARKLES].kind is CommentKind.JEWELS and replayed[SPARKLES].gift_name == "Sparkles"
    assert again.stats.kinds["jewels"] == 2


def test_the_overlay_and_mqtt_message_carry_the_gift():
    gift = Comment(id="g", author=Author("@a"), text="sent Gold coin for 10 Jewels", kind=CommentKind.JEWELS,
                   amount=10.0, currency="JEWELS", gift_name="Gold coin")
    message = event_to_message(CommentSelected(gift, "r1", 0.5), 1.0)
    assert message["comment"]["kind"] == "jewels" and message["comment"]["gift_name"] == "Gold coin"
    assert (message["comment"]["amount"], message["comment"]["currency"]) == (10.0, "JEWELS")


# Snapshot the comment card each time it changes: the gift is shown, then the next comment replaces it.
RECORD_COMMENTS = """
window.__shown = [];
const card = document.getElementById('comment');
const badge = document.getElementById('comment-badge');
new MutationObserver(() => window.__shown.push({
  author: document.getElementById('comment-author').textContent,
  text: document.getElementById('comment-text').textContent,
  badge: badge.hidden ? null : badge.textContent,
  kind: badge.dataset.kind || null,
  tier: badge.dataset.tier || null,
  badgeVisible: badge.offsetWidth > 0 && getComputedStyle(badge).display !== 'none',
})).observe(card, {childList: true, characterData: true, attributes: true, subtree: true});
"""


@pytest.mark.browser
async def test_a_jewels_gift_is_answered_first_and_shown_with_its_badge(tiny_model, character, tmp_path):
    chromium = require_chromium()
    from playwright.async_api import async_playwright

    ctranslate2.set_random_seed(3)
    log = tmp_path / "gift.live_chat.json"
    log.write_text(log_lines(TEXT, GOLD_COIN), encoding="utf-8")  # the text came first
    overlay = OverlayServer(port=0, character={"id": character.id, "name": character.name})
    await overlay.start()
    console = io.StringIO()
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            page = await browser.new_page()
            await page.goto(f"{overlay.url}?hide=0")
            await page.wait_for_function("document.body.dataset.state === 'open'", timeout=10_000)
            await page.evaluate(RECORD_COMMENTS)
            source = ReplayChatSource(log, fast=True)
            with Engine(tiny_model, device="cpu", compute_type="float32") as engine:
                pipeline = Pipeline(character=character, engine=engine, source=source,
                                    outputs=[overlay, ConsoleOutput(console)])
                stats = await pipeline.run()
            assert stats.answered == 2
            # The page has seen both comments: the gift first (paid), then the text.
            await page.wait_for_function("() => document.getElementById('comment-author').textContent"
                                         " === '@Sin_mikity'", timeout=10_000)
            shown = await page.evaluate("window.__shown")
            authors = [s["author"] for s in shown]
            assert "@yaniescobar2170" in authors and authors.index("@yaniescobar2170") < authors.index("@Sin_mikity")
            gift = [s for s in shown if s["author"] == "@yaniescobar2170"][-1]
            assert gift == {"author": "@yaniescobar2170", "text": "sent Gold coin for 10 Jewels",
                            "badge": "Gold coin · 10 Jewels", "kind": "jewels", "tier": "jewels",
                            "badgeVisible": True}
            assert shown[-1]["badge"] is None and shown[-1]["text"] == "孔明の罠"  # no chip, no badge
            # The badge for gifts whose line says less.
            labels = await page.evaluate("""() => [
              {kind: 'jewels', gift_name: 'Sparkles', amount: null, currency: 'JEWELS'},
              {kind: 'jewels', amount: 1000, currency: 'JEWELS'},
              {kind: 'jewels'},
            ].map(c => AituberOverlay.badgeOf(AituberOverlay.normalizeComment(c)).label)""")
            assert labels == ["Sparkles", "1,000 Jewels", "Jewels"]
            await browser.close()
    finally:
        await overlay.close()
    printed = console.getvalue()
    assert "@yaniescobar2170 [jewels Gold coin, 10 Jewels]: sent Gold coin for 10 Jewels" in printed
    assert printed.index("@yaniescobar2170") < printed.index("@Sin_mikity")
