"""Token dropping in VideoMAE fine-tuning: how many tokens each clip keeps, and that the model runs and learns on them."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_videomae_config
from snapaction.errors import ConfigError
from snapaction.models.tokens import check_token_keep, drop_mask, token_count


def test_every_clip_keeps_the_same_number_of_tokens_chosen_at_random():
    mask = drop_mask(3, 1568, 0.5, torch.Generator().manual_seed(0))
    assert mask.shape == (3, 1568) and mask.dtype == torch.bool
    assert (~mask).sum(1).tolist() == [784, 784, 784]
    assert not torch.equal(mask[0], mask[1])  # each clip its own tokens
    assert torch.equal(mask, drop_mask(3, 1568, 0.5, torch.Generator().manual_seed(0)))  # seeded: a resumed run repeats it
    assert (~drop_mask(1, 8, 0.01, torch.Generator())).sum() == 1  # never none


def test_videomae_trains_on_the_kept_tokens_only():
    from transformers import VideoMAEForVideoClassification

    torch.manual_seed(0)
    model = VideoMAEForVideoClassification(tiny_videomae_config(num_labels=2, use_mean_pooling=True))
    tokens = token_count(model)
    assert tokens == check_token_keep(model, 0.5, "tiny") == 2 * 2 * 2  # 4 frames / tubelet 2, 32 px / patch 16
    seen = []
    model.videomae.encoder.layer[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    x = torch.randn(2, 4, 3, 32, 32)
    mask = drop_mask(2, tokens, 0.5, torch.Generator().manual_seed(0))
    logits = model(pixel_values=x, bool_masked_pos=mask).logits
    assert seen[-1] == (2, 4, 32)  # the encoder saw 4 of the 8 tokens
    assert not torch.allclose(logits, model(pixel_values=x).logits)
    logits.sum().backward()
    assert model.videomae.embeddings.patch_embeddings.projection.weight.grad.abs().sum() > 0


def test_token_keep_is_refused_where_there_are_no_tokens():
    from snapaction.models.presets import preset

    model, _ = preset("scratch").build(["a", "b"])
    assert check_token_keep(model, 1.0, "scratch") is None
    with pytest.raises(ConfigError, match=r"--token-keep 0.5 drops VideoMAE tokens, and backbone 'scratch' \(snapaction_c3d\) has none"):
        check_token_keep(model, 0.5, "scratch")
