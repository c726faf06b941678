"""What prediction returns, whatever the model: `Prediction` (one clip) and `Window` (one stretch of a long video)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Prediction:
    """Probabilities for every class of one clip."""

    label: str
    probabilities: dict[str, float]
    """Every class, in the model's class order; the values sum to 1."""
    views: int
    seconds: float

    def ranked(self) -> list[tuple[str, float]]:
        """(class, probability), most likely first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])


@dataclass
class Window:
    """One stretch of a long video and what the model sees in it."""

    start: float
    end: float
    label: str
    probabilities: dict[str, float]
