"""Chat in: `youtube` (a live stream, through pytchat), `replay` (recorded logs), `console` (stdin).

Each source follows `aituber.sources.base.ChatSource`; see docs/sources.md.
"""
