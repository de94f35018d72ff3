import pytest

from aituber.core.commands import Command, parse_command, parse_control_payload
from aituber.core.comment import Author, Comment

OWNER = Author(name="owner", is_owner=True)
MOD = Author(name="mod", is_moderator=True)
VIEWER = Author(name="viewer")


def chat(text: str, author: Author = OWNER) -> Comment:
    return Comment(id="1", author=author, text=text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!skip", Command("skip", "", "chat", "owner")),
        ("  !PAUSE  ", Command("pause", "", "chat", "owner")),
        ("！resume", Command("resume", "", "chat", "owner")),
        ("!ban @troll", Command("ban", "@troll", "chat", "owner")),
        ("!say こんにちは みなさん", Command("say", "こんにちは みなさん", "chat", "owner")),
        ("!say　全角スペース", Command("say", "全角スペース", "chat", "owner")),
        ("!skip now please", Command("skip", "", "chat", "owner")),
    ],
)
def test_owner_commands(text: str, expected: Command) -> None:
    assert parse_command(chat(text)) == expected


def test_moderator_commands() -> None:
    assert parse_command(chat("!ban spammer", MOD)) == Command("ban", "spammer", "chat", "mod")


@pytest.mark.parametrize("text", ["!skip", "!ban owner"])
def test_viewers_cannot_command(text: str) -> None:
    assert parse_command(chat(text, VIEWER)) is None


@pytest.mark.parametrize("text", ["skip", "hello!", "!dance", "!ban", "!say   ", "!"])
def test_not_commands(text: str) -> None:
    assert parse_command(chat(text)) is None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"command": "say", "text": "hi"}', Command("say", "hi", "mqtt")),
        ('{"command": "ban", "name": "troll"}', Command("ban", "troll", "mqtt")),
        ('{"command": "PAUSE"}', Command("pause", "", "mqtt")),
        ("!say hi there", Command("say", "hi there", "mqtt")),
        ("pause", Command("pause", "", "mqtt")),
        (" resume\n", Command("resume", "", "mqtt")),
        (b"skip", Command("skip", "", "mqtt")),
    ],
)
def test_control_payloads(payload: bytes | str, expected: Command) -> None:
    assert parse_control_payload(payload) == expected


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"\xff\xfe", "UTF-8"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "unknown command"),
        ('["say"]', "unknown command"),
        ('{"text": "hi"}', '"command"'),
        ('{"command": "say"}', "needs the text"),
        ('{"command": "say", "text": 5}', "must be a string"),
        ('{"command": "dance"}', "unknown command 'dance'"),
        ("!ban", "needs a viewer name"),
        ("explode now", "unknown command 'explode'"),
    ],
)
def test_bad_control_payloads(payload: bytes | str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_control_payload(payload)


def test_json_array_payload_is_rejected_clearly() -> None:
    with pytest.raises(ValueError):
        parse_control_payload('{"command": ["say"]}')
