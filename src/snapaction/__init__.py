"""SnapAction: teach a computer new actions from a few dozen short clips per class."""

__version__ = "0.1.0"
