"""Run statistics: counts and latency percentiles for the end-of-run summary. No I/O."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from aituber.core.events import CommentSeen, CommentSkipped, Event, ReplyEnded


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


COMPLETED = ("stop", "length")
"""Stop reasons of a reply that was said in full (a reply cut at the length limit ends at a sentence)."""


@dataclass(slots=True)
class RunStats:
    """`answered` counts replies said in full (thanks and `!say` too); the others (cancelled, filtered,
    error) are in `stop_reasons` and the summary's second line."""

    seen: int = 0
    answered: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    stop_reasons: Counter[str] = field(default_factory=Counter)
    first_token_s: list[float] = field(default_factory=list)
    total_s: list[float] = field(default_factory=list)
    tokens: int = 0

    def record(self, event: Event) -> None:
        match event:
            case CommentSeen():
                self.seen += 1
            case CommentSkipped(reason=reason):
                self.skipped[reason] += 1
            case ReplyEnded():
                if event.stop_reason in COMPLETED:
                    self.answered += 1
                self.stop_reasons[event.stop_reason] += 1
                self.total_s.append(event.total_s)
                self.tokens += event.tokens
                if event.first_token_s is not None:
                    self.first_token_s.append(event.first_token_s)

    def summary_lines(self) -> list[str]:
        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v * 1000:.0f} ms"

        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{k} {v}" for k, v in self.skipped.most_common())
        lines = [
            f"comments seen {self.seen}, answered {self.answered}, skipped {skipped}"
            + (f" ({reasons})" if reasons else ""),
            *(["replies not said in full: " + ", ".join(f"{k} {v}" for k, v in self.stop_reasons.most_common()
                                                        if k not in COMPLETED)]
              if any(k not in COMPLETED for k in self.stop_reasons) else []),
            f"first token  p50 {ms(percentile(self.first_token_s, 50))}, p95 {ms(percentile(self.first_token_s, 95))}",
            f"full reply   p50 {ms(percentile(self.total_s, 50))}, p95 {ms(percentile(self.total_s, 95))}",
        ]
        return lines
