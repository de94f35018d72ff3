"""The fake YouTube moved to `aituber.bench.fake_youtube` (the soak bench serves it too); this name
stays for tests that import it from here."""

from aituber.bench.fake_youtube import (  # noqa: F401
    CHANNEL_ID,
    GARBAGE,
    HANDLE,
    RESET,
    SERVER_ERROR,
    TIMEOUT,
    TOO_MANY,
    FakeYouTube,
    Fault,
    LocalTransport,
    Step,
    continuation_pages,
    stopped_page,
)
