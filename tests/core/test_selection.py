from aituber.core.comment import Author, Comment
from aituber.core.selection import QueueSettings, SelectionQueue


def _c(i: int) -> Comment:
    return Comment(id=str(i), author=Author(name=f"v{i}"), text="hi")


def test_bounded_and_stale() -> None:
    q = SelectionQueue(QueueSettings(max_size=2, max_age_s=10))
    q.push(_c(1), 0)
    q.push(_c(2), 0)
    dropped = q.push(_c(3), 0)
    assert len(q) == 2 and dropped[0].reason == "queue_full"
    c, dropped = q.pop(100)
    assert c is None and {d.reason for d in dropped} == {"stale"}
