"""Two classifiers over pose sequences with one interface: temporal statistics + logistic regression, and a small 1D CNN.

Both take `PoseSequence` lists, integer labels indexing ``classes``, and return
float32 (N, K) probabilities whose rows sum to 1. Prediction averages views
of each clip (the clip itself and, when trained with mirroring, its mirror
image), so it is deterministic. A classifier folder holds
``pose_classifier.json`` (kind, classes, shapes) and ``weights.safetensors``
(numbers only, no pickle); `load_classifier` reads either kind back and
predicts exactly what was saved.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import numpy as np

from ..errors import SnapActionError

from .augment import mirror_sequence
from .features import PoseSequence, frame_features, resample_sequence, temporal_statistics

FORMAT_VERSION = 2
"""2: per-frame features include hands and what was seen (`features.frame_features`)."""
CONFIG_FILE = "pose_classifier.json"
WEIGHTS_FILE = "weights.safetensors"


class PoseClassifier:
    """Shared part: views at prediction, input checks, the classifier folder."""

    kind = ""

    def __init__(self, classes: list[str], length: int = 16, mirror: bool = True):
        self.classes = list(classes)
        self.length = length
        self.mirror = mirror

    # --- subclasses provide these -------------------------------------------
    def _fit(self, frames: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _proba(self, frames: np.ndarray) -> np.ndarray:
        """float (N, K) from float32 (N, T, F) per-frame features."""
        raise NotImplementedError

    def _state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-ready config, arrays) that `_restore` takes back."""
        raise NotImplementedError

    def _restore(self, config: dict, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    # --- the interface ------------------------------------------------------
    def fit(self, sequences: list[PoseSequence], labels: np.ndarray, rng: np.random.Generator) -> "PoseClassifier":
        """Train on `sequences` (already augmented, if wanted: see `training.training_pool`) with int labels (N,)."""
        labels = np.asarray(labels, np.int64)
        if len(sequences) != len(labels):
            raise ValueError(f"{len(sequences)} sequences but {len(labels)} labels")
        missing = sorted(set(range(len(self.classes))) - set(labels.tolist()))
        if missing:
            raise SnapActionError(f"no training clips of class(es) {[self.classes[i] for i in missing]}; every class needs at least one usable clip")
        self._fit(self._frames(sequences), labels, rng)
        return self

    def predict_proba(self, sequences: list[PoseSequence]) -> np.ndarray:
        """float32 (N, K) class probabilities, K = len(classes), each row summing to 1."""
        views = [sequences] + ([[mirror_sequence(s) for s in sequences]] if self.mirror else [])
        proba = np.mean([self._proba(self._frames(v)) for v in views], axis=0)
        return (proba / proba.sum(axis=1, keepdims=True)).astype(np.float32)

    def save(self, folder: str | Path) -> Path:
        """Write the classifier folder (created if missing); returns it."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config, arrays = self._state()
        config = {"kind": self.kind, "format_version": FORMAT_VERSION, "classes": self.classes,
                  "length": self.length, "mirror": self.mirror, **config}
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(folder / WEIGHTS_FILE))
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        return folder

    def num_parameters(self) -> int:
        """Learned numbers the classifier holds (weights, biases, standardisation statistics)."""
        return sum(int(np.asarray(a).size) for a in self._state()[1].values())

    @staticmethod
    def load(folder: str | Path) -> "PoseClassifier":
        """The classifier saved in `folder` (either kind)."""
        return load_classifier(folder)

    def _frames(self, sequences: list[PoseSequence]) -> np.ndarray:
        """float32 (N, T, F) per-frame features at this classifier's length."""
        return np.stack([frame_features(s if s.length == self.length else resample_sequence(s, self.length)) for s in sequences])


class StatsClassifier(PoseClassifier):
    """Standardised temporal statistics (`features.temporal_statistics`) -> multinomial logistic regression."""

    kind = "stats"

    def __init__(self, classes, length=16, mirror=True, c: float = 0.5):
        super().__init__(classes, length, mirror)
        self.c = c

    def _fit(self, frames, labels, rng):
        from sklearn.linear_model import LogisticRegression

        x = np.stack([temporal_statistics(f) for f in frames])  # (N, S)
        self.mean = x.mean(0)
        self.std = np.where(x.std(0) > 1e-6, x.std(0), 1.0).astype(np.float32)
        model = LogisticRegression(C=self.c, max_iter=3000)
        model.fit((x - self.mean) / self.std, labels)
        self.coef = model.coef_.astype(np.float32)  # (K, S), or (1, S) for two classes
        self.intercept = model.intercept_.astype(np.float32)

    def _proba(self, frames):
        x = np.stack([temporal_statistics(f) for f in frames])
        z = ((x - self.mean) / self.std) @ self.coef.T.astype(np.float64) + self.intercept  # (N, K) or (N, 1)
        if z.shape[1] == 1:  # sklearn's binary form: the logit of class 1
            z = np.concatenate([np.zeros_like(z), z], axis=1)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def _state(self):
        return {"c": self.c}, {"mean": self.mean, "std": self.std, "coef": self.coef, "intercept": self.intercept}

    def _restore(self, config, arrays):
        self.c = config["c"]
        self.mean, self.std, self.coef, self.intercept = (arrays[k] for k in ("mean", "std", "coef", "intercept"))


class TemporalClassifier(PoseClassifier):
    """A small 1D CNN over the (T, F) per-frame features (standardised per feature), trained with AdamW."""

    kind = "temporal"

    def __init__(self, classes, length=16, mirror=True, width: int = 64, epochs: int = 120, dropout: float = 0.3):
        super().__init__(classes, length, mirror)
        self.width, self.epochs, self.dropout = width, epochs, dropout
        self.net = None

    def _build(self, num_features: int):
        self.net = _make_net(num_features, len(self.classes), self.width, self.dropout)

    def _fit(self, frames, labels, rng):
        import torch

        n, t, f = frames.shape
        with torch.random.fork_rng(devices=[]), _one_thread():
            torch.manual_seed(int(rng.integers(2**31)))
            self._build(f)
            flat = frames.reshape(-1, f)
            self.net.mean.copy_(torch.from_numpy(flat.mean(0)))
            self.net.std.copy_(torch.from_numpy(np.where(flat.std(0) > 1e-6, flat.std(0), 1.0).astype(np.float32)))
            x, y = torch.from_numpy(frames), torch.from_numpy(labels)
            batch = 64
            steps = self.epochs * max(1, -(-n // batch))
            params = [p for p in self.net.parameters() if p.requires_grad]
            moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
            self.net.train()
            step = 0
            for _ in range(self.epochs):
                order = torch.from_numpy(rng.permutation(n))
                for i in range(0, n, batch):
                    idx = order[i:i + batch]
                    loss = torch.nn.functional.cross_entropy(self.net(x[idx]), y[idx], label_smoothing=0.1)
                    self.net.zero_grad(set_to_none=True)
                    loss.backward()
                    step += 1
                    _adamw_step(params, moments, step, _learning_rate(step, steps))
            self.net.eval()

    def _proba(self, frames):
        import torch

        with torch.no_grad(), _one_thread():
            return torch.softmax(self.net(torch.from_numpy(frames)).double(), dim=1).numpy()

    def _state(self):
        config = {"width": self.width, "epochs": self.epochs, "dropout": self.dropout, "num_features": int(self.net.mean.numel())}
        return config, {k: v.detach().numpy() for k, v in self.net.state_dict().items()}

    def _restore(self, config, arrays):
        import torch

        self.width, self.epochs, self.dropout = config["width"], config["epochs"], config["dropout"]
        self._build(config["num_features"])
        self.net.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
        self.net.eval()


def _learning_rate(step: int, steps: int, peak: float = 3e-3, warmup: float = 0.1) -> float:
    """Linear warmup over the first `warmup` of the steps, then cosine decay to 0."""
    w = max(1, int(warmup * steps))
    if step <= w:
        return peak * step / w
    return peak * 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, steps - w)))


def _adamw_step(params, moments, step: int, lr: float, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2) -> None:
    """One AdamW update in place (the algorithm of torch.optim.AdamW, written out because importing
    torch.optim imports torch._dynamo: 2-3 s on a laptop CPU, more than this network's whole training)."""
    import torch

    b1, b2 = betas
    with torch.no_grad():
        for p, (m, v) in zip(params, moments):
            if p.grad is None:
                continue
            p.mul_(1 - lr * weight_decay)
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            denom = (v / (1 - b2**step)).sqrt_().add_(eps)
            p.addcdiv_(m, denom, value=-lr / (1 - b1**step))


@contextlib.contextmanager
def _one_thread():
    """Run torch on one thread: this network is so small that a second thread only adds
    synchronisation (measured: 7 ms per training step on one thread, 30-120 ms on two)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _make_net(num_features: int, num_classes: int, width: int, dropout: float):
    import torch
    from torch import nn

    class TemporalNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.zeros(num_features))
            self.register_buffer("std", torch.ones(num_features))
            self.conv = nn.Sequential(
                nn.Conv1d(num_features, width, 3, padding=1), nn.ReLU(), nn.Dropout(dropout),
                nn.Conv1d(width, width, 3, padding=2, dilation=2), nn.ReLU(),
            )
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * width, num_classes))

        def forward(self, x):  # (N, T, F) -> (N, K) logits
            h = self.conv(((x - self.mean) / self.std).transpose(1, 2))  # (N, W, T)
            return self.head(torch.cat([h.mean(-1), h.amax(-1)], dim=1))

    return TemporalNet()


KINDS = {"stats": StatsClassifier, "temporal": TemporalClassifier}


def load_classifier(folder: str | Path) -> PoseClassifier:
    """The classifier saved in `folder` by `PoseClassifier.save`."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise SnapActionError(f"no pose classifier in {folder}: expected {CONFIG_FILE} and {WEIGHTS_FILE} there, as PoseClassifier.save writes them")
    config = json.loads((folder / CONFIG_FILE).read_text())
    if config.get("kind") not in KINDS or config.get("format_version") != FORMAT_VERSION:
        raise SnapActionError(f"{folder / CONFIG_FILE} holds kind={config.get('kind')!r}, format_version={config.get('format_version')!r}; "
                              f"this SnapAction reads kinds {sorted(KINDS)} at format_version {FORMAT_VERSION}: retrain the pose model")
    model = KINDS[config["kind"]](config["classes"], config["length"], config["mirror"])
    model._restore(config, load_file(str(folder / WEIGHTS_FILE)))
    return model
