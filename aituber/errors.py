"""One error root, one subclass per boundary. A user-caused error says what, where, and what to do."""


class AituberError(Exception):
    """Root of every error aituber raises on purpose."""


class ConfigError(AituberError):
    """A settings or character file is missing or invalid."""


class ChatSourceError(AituberError):
    """A chat source (log file, YouTube) cannot be read."""


class ChatLogLineError(ChatSourceError):
    """One line of a chat log is malformed. Carries the file and line for the warning."""

    def __init__(self, path: str, line_no: int, reason: str) -> None:
        super().__init__(f"{path}:{line_no}: {reason}")
        self.path = path
        self.line_no = line_no
        self.reason = reason


class ModelError(AituberError):
    """A model folder is missing, incomplete or of an unsupported kind."""


class GenerationError(AituberError):
    """The engine failed while generating a reply."""
