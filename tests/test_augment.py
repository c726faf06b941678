"""Training augmentation: one change for every frame of a clip, frame order kept, values right."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from snapaction import config
from snapaction.augment import Augment, color_jitter, crop_box, hflip, mixup, random_resized_crop
from snapaction.errors import ConfigError


def clip(t=6, h=24, w=32, seed=0) -> torch.Tensor:
    """float32 (T, C, H, W) in [0, 1] whose frames all differ."""
    return torch.from_numpy(np.random.default_rng(seed).random((t, 3, h, w), dtype=np.float32))


def rng(seed=0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("seed", range(8))
def test_identical_frames_stay_identical(seed):
    frame = clip(1, 30, 40, seed=100 + seed)
    video = frame.repeat(5, 1, 1, 1)
    out = Augment(brightness=0.5, contrast=0.5, saturation=0.5)(video, (20, 24), rng(seed))
    assert out.shape == (5, 3, 20, 24)
    for t in range(1, 5):
        assert torch.equal(out[t], out[0])


@pytest.mark.parametrize("seed", range(8))
def test_each_frame_gets_the_change_it_would_get_alone_and_order_is_kept(seed):
    video = clip(7, 30, 40, seed=seed)
    augment = Augment(brightness=0.5, contrast=0.5, saturation=0.5)
    out = augment(video, (16, 16), rng(seed))
    for t in range(len(video)):
        alone = augment(video[t : t + 1], (16, 16), rng(seed))[0]
        torch.testing.assert_close(out[t], alone, rtol=0, atol=1e-6)
    # and frame t is not some other frame: frames differ, so their augmentations do too
    assert not torch.allclose(out[0], out[-1])


def test_the_change_is_not_a_no_op():
    video = clip(3, 30, 40)
    outs = [Augment()(video, (30, 40), rng(s)) for s in range(4)]
    assert all(not torch.allclose(o, F.interpolate(video, (30, 40))) for o in outs)
    assert not torch.allclose(outs[0], outs[1])


def test_hflip_mirrors_and_twice_is_identity():
    video = clip()
    assert torch.equal(hflip(video)[..., 0], video[..., -1])
    assert torch.equal(hflip(video), torch.from_numpy(video.numpy()[..., ::-1].copy()))
    assert torch.equal(hflip(hflip(video)), video)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 64),
    w=st.integers(1, 64),
    lo=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_crop_box_lies_inside_the_frame(h, w, lo, seed):
    top, left, bh, bw = crop_box(h, w, (lo, 1.0), (3 / 4, 4 / 3), rng(seed))
    assert 0 <= top and 0 <= left and 1 <= bh and 1 <= bw
    assert top + bh <= h and left + bw <= w


@pytest.mark.parametrize("out_size", [(16, 16), (12, 20), (40, 30), 14])
def test_crop_output_size(out_size):
    out = random_resized_crop(clip(4, 24, 32), out_size, rng=rng())
    expected = (out_size, out_size) if isinstance(out_size, int) else out_size
    assert out.shape == (4, 3, *expected) and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("h, w", [(24, 32), (30, 30), (40, 22)])
def test_full_scale_own_aspect_crop_is_a_plain_resize(h, w):
    video = clip(4, h, w)
    for seed in range(5):
        out = random_resized_crop(video, (16, 18), scale=(1.0, 1.0), ratio=(w / h, w / h), rng=rng(seed))
        expected = F.interpolate(video, size=(16, 18), mode="bilinear", align_corners=False, antialias=True)
        assert torch.equal(out, expected)


def test_crop_cuts_the_box_it_draws():
    video = clip(3, 40, 50)
    top, left, h, w = crop_box(40, 50, (0.3, 0.6), (3 / 4, 4 / 3), rng(5))
    out = random_resized_crop(video, (h, w), scale=(0.3, 0.6), rng=rng(5))  # same size: no resampling
    torch.testing.assert_close(out, video[..., top : top + h, left : left + w], rtol=0, atol=1e-6)
    assert (h, w) != (40, 50)


def test_color_jitter_with_zero_strength_is_identity():
    video = clip()
    assert torch.equal(color_jitter(video, 0, 0, 0, rng=rng()), video)


def test_brightness_scales_every_pixel_of_every_frame_by_one_factor():
    video = clip() * 0.5  # no clamping at factors up to 2
    out = color_jitter(video, brightness=0.9, contrast=0, saturation=0, rng=rng(3))
    ratio = out / video
    assert abs(ratio.mean().item() - 1) > 0.01
    torch.testing.assert_close(ratio, torch.full_like(ratio, ratio.mean().item()), rtol=1e-5, atol=1e-5)


def test_saturation_zero_makes_grey_and_values_stay_in_range():
    video = clip()
    grey = color_jitter(video, brightness=0, contrast=0, saturation=1.0, rng=_rng_drawing_saturation_zero())
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-6) and torch.allclose(grey[:, 1], grey[:, 2], atol=1e-6)
    for seed in range(10):
        out = color_jitter(video, 1.0, 1.0, 1.0, rng=rng(seed))
        assert 0 <= out.min() and out.max() <= 1


def _rng_drawing_saturation_zero():
    class Fixed:
        def uniform(self, lo, hi):
            return lo  # saturation strength 1 -> factor 0

        def permutation(self, n):
            return np.arange(n)

    return Fixed()


def test_contrast_keeps_each_frames_mean_grey_level():
    video = clip() * 0.5 + 0.25
    out = color_jitter(video, brightness=0, contrast=0.5, saturation=0, rng=rng(1))
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    torch.testing.assert_close((out * luma).sum(1).mean((1, 2)), (video * luma).sum(1).mean((1, 2)))
    assert not torch.allclose(out, video)


def onehot_batch(b=6, k=6):
    """Video i is filled with the value i / 10 and belongs to class i."""
    videos = (torch.arange(b, dtype=torch.float32) / 10).view(b, 1, 1, 1, 1).expand(b, 4, 3, 8, 8).clone()
    return videos, torch.eye(b, k)


@pytest.mark.parametrize("seed", range(6))
def test_mixup_targets_are_convex_and_match_the_videos(seed):
    videos, targets = onehot_batch()
    mixed, mixed_targets = mixup(videos, targets, 0.4, rng(seed))
    assert mixed.shape == videos.shape and mixed_targets.shape == targets.shape
    assert (mixed_targets >= 0).all()
    torch.testing.assert_close(mixed_targets.sum(1), torch.ones(6))
    # each mixed clip is the same blend of clips as its target is of classes
    values = torch.arange(6, dtype=torch.float32) / 10
    expected = mixed_targets @ values
    torch.testing.assert_close(mixed.flatten(1), expected[:, None].expand(6, mixed[0].numel()))
    # the lambda is Beta(alpha, alpha) drawn first, then the pairing permutation
    draw = rng(seed)
    lam, perm = draw.beta(0.4, 0.4), draw.permutation(6)
    torch.testing.assert_close(mixed_targets, lam * targets + (1 - lam) * targets[perm])


def test_mixup_alpha_zero_is_identity_and_bad_targets_are_refused():
    videos, targets = onehot_batch()
    out = mixup(videos, targets, 0, rng=rng())
    assert out[0] is videos and out[1] is targets
    with pytest.raises(ValueError, match=r"targets must be \(B, K\)"):
        mixup(videos, targets[:3], 0.2, rng=rng())


def test_augment_mix_respects_probability():
    videos, targets = onehot_batch()
    assert Augment(mixup_prob=0).mix(videos, targets, rng())[1] is targets
    assert Augment(mixup_alpha=0, mixup_prob=1).mix(videos, targets, rng())[1] is targets
    assert not torch.equal(Augment(mixup_prob=1).mix(videos, targets, rng())[1], targets)


def test_augment_without_flip_never_mirrors():
    # a left-to-right ramp stays increasing after any crop and colour change without flip
    ramp = torch.linspace(0.1, 0.9, 40).view(1, 1, 1, 40).expand(3, 3, 20, 40).clone()
    for seed in range(10):
        out = Augment(flip=False, saturation=0)(ramp, (10, 10), rng(seed))
        assert (out[..., 1:] >= out[..., :-1] - 1e-6).all()
    flipped = [Augment(saturation=0)(ramp, (10, 10), rng(seed)) for seed in range(10)]
    assert any((o[..., 1:] < o[..., :-1]).any() for o in flipped)


def test_augment_rejects_bad_values_all_at_once():
    with pytest.raises(ConfigError) as err:
        Augment(crop_scale_min=0.0, crop_scale_max=1.5, brightness=-0.1, mixup_alpha=float("nan"), mixup_prob=2.0)
    message = str(err.value)
    for piece in ("crop_scale_min must be in (0, 1], got 0.0", "crop_scale_max must be in (0, 1], got 1.5",
                  "brightness must be zero or positive, got -0.1", "mixup_alpha must be zero or positive, got nan",
                  "mixup_prob must be in [0, 1], got 2.0"):
        assert piece in message
    with pytest.raises(ConfigError, match=r"crop_scale_min \(0.9\) must not exceed crop_scale_max \(0.6\)"):
        Augment(crop_scale_min=0.9, crop_scale_max=0.6)


def test_augment_fields_are_cli_options():
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, Augment)
    text = parser.format_help()
    for flag in ("--crop-scale-min", "--crop-scale-max", "--flip", "--no-flip", "--brightness", "--contrast",
                 "--saturation", "--mixup-alpha", "--mixup-prob"):
        assert flag in text
    assert "0 disables mixup (default: 0.2)" in " ".join(text.split())
    aug = config.from_args(Augment, parser.parse_args(["--no-flip", "--mixup-alpha", "0", "--crop-scale-min", "0.3"]))
    assert aug == Augment(flip=False, mixup_alpha=0.0, crop_scale_min=0.3)


def test_bad_layout_is_refused():
    with pytest.raises(ValueError, match=r"\(T, C, H, W\)"):
        random_resized_crop(torch.zeros(2, 3, 8, 8, 3), (4, 4), rng=rng())
