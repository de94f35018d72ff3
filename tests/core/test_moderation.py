from aituber.core.comment import Author, Comment
from aituber.core.moderation import Moderator, ModerationSettings


def _c(text: str) -> Comment:
    return Comment(id="1", author=Author(name="a"), text=text)


def test_empty_and_too_long() -> None:
    m = Moderator(ModerationSettings(max_comment_chars=5))
    assert m.check(_c("   "), 0.0) == "empty"
    assert m.check(_c("123456"), 0.0) == "too_long"
    assert m.check(_c("こんにちは"), 0.0) is None
