"""The `scratch` preset: a small 3D-convolutional video classifier trained from random weights.

Chosen by measurement (see docs/scratch-preset.md): on 2 CPU cores a small
VideoMAE trained from scratch barely learns the order of motion in minutes
(about 0.6 accuracy on time-reversed pairs), while this network of 0.74M
parameters learns it. Frame differences (x[t] - x[t-1]) are fed beside the
frames, which made motion order easier to learn on the demo data. It is exposed as an
ordinary transformers model (config + ``save_pretrained``/``from_pretrained``
+ ``AutoModelForVideoClassification``), so the rest of SnapAction treats it
like any hub backbone.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForVideoClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput

MODEL_TYPE = "snapaction_c3d"


class C3DConfig(PretrainedConfig):
    """Sizes of the scratch network. Input: pixel_values float (B, T, C, H, W)."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        num_channels: int = 3,
        stem_channels: int = 16,
        block_channels: tuple[int, ...] = (32, 64, 128, 128),
        dropout: float = 0.2,
        frame_differences: bool = True,
        num_frames: int = 8,
        image_size: int = 64,
        **kwargs,
    ):
        self.num_channels = num_channels
        self.stem_channels = stem_channels
        self.block_channels = list(block_channels)
        self.dropout = dropout
        self.frame_differences = frame_differences
        self.num_frames = num_frames
        self.image_size = image_size
        super().__init__(**kwargs)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True))


# Pooling after each block but the last: space first, then space and time.
_POOLS = ((1, 2, 2), (2, 2, 2), (2, 2, 2))


class C3DForVideoClassification(PreTrainedModel):
    """Stem conv3d 3x5x5 /(1,2,2), conv3d 3x3x3 blocks with max-pooling, global average pool, dropout, linear."""

    config_class = C3DConfig
    base_model_prefix = "c3d"
    main_input_name = "pixel_values"

    def __init__(self, config: C3DConfig):
        super().__init__(config)
        layers: list[nn.Module] = [
            nn.Conv3d(config.num_channels * (2 if config.frame_differences else 1), config.stem_channels, (3, 5, 5), stride=(1, 2, 2), padding=(1, 2, 2), bias=False),
            nn.BatchNorm3d(config.stem_channels),
            nn.ReLU(inplace=True),
        ]
        c_in = config.stem_channels
        for i, c_out in enumerate(config.block_channels):
            layers.append(_block(c_in, c_out))
            if i < len(config.block_channels) - 1:
                layers.append(nn.MaxPool3d(_POOLS[min(i, len(_POOLS) - 1)]))
            c_in = c_out
        self.c3d = nn.Sequential(*layers)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(c_in, config.num_labels)
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.Conv3d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm3d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.01)
            nn.init.zeros_(module.bias)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, **kwargs) -> ImageClassifierOutput:
        x = pixel_values.transpose(1, 2)  # (B, T, C, H, W) -> (B, C, T, H, W)
        if self.config.frame_differences:  # motion made explicit: x[t] - x[t-1] beside the frames, zero at t=0
            diff = torch.nn.functional.pad(x[:, :, 1:] - x[:, :, :-1], (0, 0, 0, 0, 1, 0))
            x = torch.cat([x, diff], dim=1)  # (B, 2C, T, H, W)
        # Channels-last 3D memory: the CPU convolution kernels run a training step about 1.3x faster on it.
        # (The ONNX exporter cannot write a memory format, and onnxruntime picks its own layout.)
        if not torch.onnx.is_in_onnx_export():
            x = x.contiguous(memory_format=torch.channels_last_3d)
        x = self.c3d(x).mean(dim=(2, 3, 4))  # (B, C')
        logits = self.classifier(self.dropout(x))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(MODEL_TYPE, C3DConfig, exist_ok=True)
AutoModelForVideoClassification.register(C3DConfig, C3DForVideoClassification, exist_ok=True)
