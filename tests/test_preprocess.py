"""Preprocessing: settings read from the backbone's processor config, tensors equal to transformers' own processor."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from snapaction.errors import BackboneError, ConfigError
from snapaction.preprocess import Preprocessing, center_crop, crop_boxes, normalize, to_float

# MCG-NJU/videomae-base's preprocessor_config.json: the 2022 feature-extractor format,
# 271 bytes on the hub, which json.dumps(indent=2, sort_keys=True) + "\n" of this reproduces.
VIDEOMAE_BASE = {
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "VideoMAEFeatureExtractor",
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "resample": 2,
    "size": 224,
}

# The processor of MCG-NJU/videomae-base-finetuned-kinetics as transformers saves it again
# (copied from checkpoints fine-tuned from it): the image-processor format, ImageNet statistics.
VIDEOMAE_KINETICS = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "feature_extractor_type": "VideoMAEFeatureExtractor",
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "VideoMAEImageProcessor",
    "image_std": [0.229, 0.224, 0.225],
    "resample": 2,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 224},
}

# facebook/timesformer-base-finetuned-k400 (a Kinetics-400 checkpoint whose statistics differ)
TIMESFORMER_K400 = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.45, 0.45, 0.45],
    "image_processor_type": "VideoMAEImageProcessor",
    "image_std": [0.225, 0.225, 0.225],
    "resample": 2,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 224},
}

# size given as height/width (resized exactly, aspect not kept), bicubic, crop larger than the frame
HEIGHT_WIDTH = {
    "crop_size": {"height": 112, "width": 160},
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "resample": 3,
    "size": {"height": 128, "width": 144},
}

CONFIGS = {"videomae-base": VIDEOMAE_BASE, "videomae-kinetics": VIDEOMAE_KINETICS, "timesformer-k400": TIMESFORMER_K400, "height-width": HEIGHT_WIDTH}


def save_config(folder: Path, config: dict, name: str = "preprocessor_config.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder


def transformers_processor(folder: Path):
    try:
        from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil as cls
    except ImportError:  # transformers < 5: this class is the Pillow/numpy one
        from transformers import VideoMAEImageProcessor as cls
    return cls.from_pretrained(folder)


def test_base_config_mirrors_the_hub_file_byte_count():
    assert len(json.dumps(VIDEOMAE_BASE, indent=2, sort_keys=True) + "\n") == 271


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("shape", [(4, 300, 400), (3, 180, 320), (2, 500, 240), (2, 224, 300), (2, 90, 100)])
def test_tensors_match_transformers_videomae_processor(tmp_path, name, shape):
    folder = save_config(tmp_path / name, CONFIGS[name])
    frames = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    expected = transformers_processor(folder)(list(frames), return_tensors="np")["pixel_values"][0]
    ours = Preprocessing.from_backbone(folder)(frames)
    assert ours.dtype == torch.float32 and ours.shape == expected.shape
    assert np.abs(ours.numpy() - expected).max() <= 1e-4


def test_settings_are_read_from_the_config(tmp_path):
    base = Preprocessing.from_backbone(save_config(tmp_path / "b", VIDEOMAE_BASE))
    assert (base.size, base.crop, base.mean, base.std, base.resample) == (224, (224, 224), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bilinear")
    k400 = Preprocessing.from_backbone(TIMESFORMER_K400)
    assert (k400.mean, k400.std, k400.rescale) == ((0.45,) * 3, (0.225,) * 3, 0.00392156862745098)
    hw = Preprocessing.from_backbone(HEIGHT_WIDTH)
    assert (hw.size, hw.resize_to, hw.crop, hw.resample) == (128, (128, 144), (112, 160), "bicubic")
    vjepa_like = Preprocessing.from_backbone({"size": {"shortest_edge": 292}, "crop_size": 256, "image_mean": 0.5, "image_std": 0.5})
    assert (vjepa_like.size, vjepa_like.crop, vjepa_like.mean) == (292, (256, 256), (0.5, 0.5, 0.5))


def test_folder_without_config_uses_videomae_defaults_and_says_so(tmp_path, caplog):
    folder = tmp_path / "bare"
    folder.mkdir()
    with caplog.at_level(logging.INFO, logger="snapaction.preprocess"):
        prep = Preprocessing.from_backbone(folder)
    assert (prep.size, prep.crop, prep.mean, prep.std) == (224, (224, 224), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert "defaults" in caplog.text and str(folder) in caplog.text


def test_video_processor_config_and_json_file_are_found(tmp_path):
    folder = save_config(tmp_path / "v", TIMESFORMER_K400, name="video_preprocessor_config.json")
    assert Preprocessing.from_backbone(folder).mean == (0.45,) * 3
    assert Preprocessing.from_backbone(folder / "video_preprocessor_config.json").mean == (0.45,) * 3


def test_hub_ids_are_read_from_the_local_cache_only(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)

    def cache_repo(repo_id: str, files: dict) -> None:
        repo = tmp_path / f"models--{repo_id.replace('/', '--')}"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text("0" * 40)
        snap = repo / "snapshots" / ("0" * 40)
        snap.mkdir(parents=True)
        for name, content in files.items():
            (snap / name).write_text(json.dumps(content))

    cache_repo("someone/k400", {"config.json": {}, "preprocessor_config.json": TIMESFORMER_K400})
    cache_repo("someone/bare", {"config.json": {}})
    assert Preprocessing.from_backbone("someone/k400").mean == (0.45,) * 3
    assert Preprocessing.from_backbone("someone/bare").mean == (0.485, 0.456, 0.406)
    with pytest.raises(BackboneError, match="hf download someone/absent"):
        Preprocessing.from_backbone("someone/absent")
    with pytest.raises(BackboneError, match="does not exist"):
        Preprocessing.from_backbone(str(tmp_path / "no" / "such" / "folder"))


def test_dict_round_trip_through_json():
    prep = Preprocessing.from_backbone(HEIGHT_WIDTH)
    again = Preprocessing.from_dict(json.loads(json.dumps(prep.to_dict())))
    assert again == prep
    frames = np.random.default_rng(0).integers(0, 256, (2, 100, 150, 3), dtype=np.uint8)
    assert torch.equal(again(frames), prep(frames))


def test_bad_values_are_all_reported_with_what_was_given():
    with pytest.raises(ConfigError) as err:
        Preprocessing(size=0, crop=(224, 224), mean=(0.5, 0.5), std=(0.2, 0.0, 0.2), resample="bilinaer")
    text = str(err.value)
    assert "size must be" in text and "mean must have 3" in text and "std values must be positive" in text
    assert "Did you mean 'bilinear'" in text
    with pytest.raises(ConfigError, match="unknown preprocessing keys \\['crop_size'\\]"):
        Preprocessing.from_dict({"size": 224, "crop_size": 224, "mean": (0, 0, 0), "std": (1, 1, 1)})
    with pytest.raises(ConfigError, match="size .* is not understood"):
        Preprocessing.from_backbone({"size": {"longest_edge": 300}})


def test_frames_already_at_size_are_not_resized():
    prep = Preprocessing(size=8, crop=(6, 6), mean=(0.5, 0.25, 0.0), std=(0.5, 0.5, 0.25))
    frames = np.random.default_rng(1).integers(0, 256, (3, 8, 12, 3), dtype=np.uint8)
    expected = (torch.from_numpy(frames[:, 1:7, 3:9]).permute(0, 3, 1, 2).float() / 255 - torch.tensor([0.5, 0.25, 0.0]).view(3, 1, 1)) / torch.tensor(
        [0.5, 0.5, 0.25]
    ).view(3, 1, 1)
    torch.testing.assert_close(prep(frames), expected)
    torch.testing.assert_close(prep(torch.from_numpy(frames)), expected)  # torch input too


def test_input_that_is_not_uint8_frames_is_refused():
    prep = Preprocessing.from_backbone({})
    with pytest.raises(ValueError, match="uint8 \\(T, H, W, 3\\)"):
        prep(np.zeros((2, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="uint8 \\(T, H, W, 3\\)"):
        prep(np.zeros((8, 8, 3), dtype=np.uint8))


def test_pure_functions_keep_the_layout():
    frames = np.random.default_rng(2).integers(0, 256, (2, 30, 40, 3), dtype=np.uint8)
    video = to_float(frames)
    assert video.shape == (2, 3, 30, 40) and video.dtype == torch.float32
    assert video.min() >= 0 and video.max() <= 1
    torch.testing.assert_close(video[1, 2, 5, 7], torch.tensor(frames[1, 5, 7, 2] / 255, dtype=torch.float32))
    assert center_crop(video, (10, 20)).shape == (2, 3, 10, 20)
    torch.testing.assert_close(center_crop(video, (10, 20)), video[..., 10:20, 10:30])
    padded = center_crop(video, (33, 40))  # taller than the frame: zero rows above and below, as transformers pads
    assert padded.shape == (2, 3, 33, 40) and padded[..., :2, :].abs().sum() == 0 and padded[..., -1:, :].abs().sum() == 0
    out = normalize(video, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    torch.testing.assert_close(out, (video - 0.5) / 0.25)


def test_three_crops_cover_the_start_centre_and_end_of_the_longer_side():
    assert crop_boxes((30, 40), (30, 30), 3) == [(0, 0), (0, 5), (0, 10)]  # landscape: along the width
    assert crop_boxes((40, 30), (30, 30), 3) == [(0, 0), (5, 0), (10, 0)]  # portrait: along the height
    assert crop_boxes((30, 40), (30, 30), 1) == [(0, 5)]
    frames = np.random.default_rng(4).integers(0, 256, (2, 30, 40, 3), dtype=np.uint8)
    prep = Preprocessing(size=30, crop=(30, 30), mean=(0.5,) * 3, std=(0.5,) * 3)
    crops = prep.crops(frames, 3)
    assert crops.shape == (3, 2, 3, 30, 30)
    torch.testing.assert_close(crops[1], prep(frames), rtol=0, atol=0)
    expected_right = (torch.from_numpy(frames[..., 10:40, :]).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
    torch.testing.assert_close(crops[2], expected_right)
