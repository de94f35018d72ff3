"""aituber: run an AI character live on YouTube from your own PC."""

__version__ = "0.1.0"
