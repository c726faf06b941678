"""The transformers documentation's video classification, as a script: the whole-process reference of bench/infer.py.

Decode every frame with PyAV up to the last wanted one, keep 16 (uniform: the
middle of 16 equal segments, the frames SnapAction samples), run the VideoMAE
image processor (the Pillow/numpy one) and the fp32 model, print the top class.

    python bench/docs_predict.py CHECKPOINT CLIP [CLIP ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np
import torch
from transformers import AutoModelForVideoClassification

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decode import image_processor, read_video_pyav  # noqa: E402


def indices_for(length: int, n: int = 16) -> np.ndarray:
    return ((np.arange(n) + 0.5) * length / n).astype(int)  # as snapaction's uniform_indices


def classify(model, processor, path: str) -> torch.Tensor:
    with av.open(path) as container:
        frames = container.streams.video[0].frames or sum(1 for _ in container.demux(video=0))
        video = read_video_pyav(container, indices_for(frames))
    inputs = processor(list(video), return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits.softmax(-1)[0]


def main(argv: list[str]) -> int:
    folder, clips = argv[0], argv[1:]
    model = AutoModelForVideoClassification.from_pretrained(folder).eval()
    processor = image_processor(Path(folder))
    for clip in clips:
        probs = classify(model, processor, clip)
        print(f"{Path(clip).stem}: {model.config.id2label[int(probs.argmax())]} {float(probs.max()):.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
