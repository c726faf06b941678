"""Training: the config, setup once, the loop (LoRA / full), probe mode, the recipe, and the learning curve."""

from .config import TrainConfig, TrainResult  # noqa: F401
from .loop import train  # noqa: F401
