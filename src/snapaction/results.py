"""What prediction returns, whatever the model: `Prediction` (one clip) and `Window` (one stretch of a long video)."""

from __future__ import annotations

from dataclasses import dataclass

UNSURE_MARGIN = 0.15
"""A prediction is *unsure* when its top class leads the runner-up by less than this much probability:
the model cannot tell those two apart on this clip, so the top class is not an answer to act on."""


def margin(probabilities: dict[str, float]) -> float:
    """Top probability minus the runner-up's (the top one alone when there is a single class)."""
    top = sorted(probabilities.values(), reverse=True)
    return float(top[0] - (top[1] if len(top) > 1 else 0.0))


@dataclass
class Prediction:
    """Probabilities for every class of one clip."""

    label: str
    probabilities: dict[str, float]
    """Every class, in the model's class order; the values sum to 1."""
    views: int
    seconds: float
    seen: dict[str, int] | None = None
    """What the model could see in the clip, for models with such a notion (the pose model:
    ``{"frames": 16, "body": 3, "hands": 12}``, frames of its grid with a body and with a hand); None otherwise."""
    thin: bool = False
    """The evidence was thin (the pose model: a body and hands each in under a quarter of the frames, by default):
    the clip was classified, but on little; it makes the prediction `unsure`."""

    def ranked(self) -> list[tuple[str, float]]:
        """(class, probability), most likely first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])

    @property
    def margin(self) -> float:
        """How far the top class leads the runner-up."""
        return margin(self.probabilities)

    @property
    def unsure(self) -> bool:
        """True when the top class leads the runner-up by less than `UNSURE_MARGIN`, or the evidence was `thin`."""
        return self.margin < UNSURE_MARGIN or self.thin

    def why_unsure(self) -> str:
        """Why the prediction is unsure, in words ('' when it is not)."""
        reasons = []
        if self.thin and self.seen:
            reasons.append(f"little in view: a body in {self.seen['body']} and hands in {self.seen['hands']} of {self.seen['frames']} frames")
        if self.margin < UNSURE_MARGIN:
            reasons.append(f"the top two are within {UNSURE_MARGIN:g}")
        return "; ".join(reasons)

    def to_dict(self) -> dict:
        """JSON-ready: label, unsure (and why), probabilities, and what was seen."""
        return {"label": self.label, "unsure": self.unsure, "why_unsure": self.why_unsure(),
                "probabilities": self.probabilities, "seen": self.seen}


@dataclass
class Window:
    """One stretch of a long video and what the model sees in it."""

    start: float
    end: float
    label: str
    probabilities: dict[str, float]
