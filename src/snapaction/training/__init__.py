"""Training: the config, setup once, the loop (LoRA / full), probe mode, pose, the recipe, and the learning curve.

`train` and `TrainConfig` are found here; they load on first use, so that reading the
options (``snapaction train --help``, a wrong path) does not wait for the model libraries.
"""


def __getattr__(name: str):
    if name == "train":
        from .loop import train

        return train
    if name in ("TrainConfig", "TrainResult"):
        from . import config

        return getattr(config, name)
    raise AttributeError(f"module 'snapaction.training' has no attribute {name!r}")
