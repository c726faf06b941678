"""Background masking: the three methods, the cache, training with --mask, and prediction applying the run's masking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import write_video

REAL_CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-clips"


def blob_clip(t: int = 16, h: int = 60, w: int = 80, seed: int = 0, colour=(240, 60, 200)):
    """uint8 (T, H, W, 3) frames of a disc moving over a static blocky texture, and its bool (T, H, W) true masks."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, (h // 4, w // 4, 3)).repeat(4, 0).repeat(4, 1).astype(np.uint8)
    frames = np.repeat(background[None], t, 0)
    truth = np.zeros((t, h, w), bool)
    yy, xx = np.mgrid[:h, :w]
    for i in range(t):
        cx, cy = 14 + i * (w - 28) / (t - 1), h / 2 + 8 * np.sin(i / 3)
        truth[i] = (xx - cx) ** 2 + (yy - cy) ** 2 < 10**2
        frames[i][truth[i]] = colour
    noisy = np.clip(frames.astype(int) + rng.integers(-6, 7, frames.shape), 0, 255).astype(np.uint8)
    return noisy, truth


def iou(a, b) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_motion_masks_find_a_moving_blob_over_a_static_textured_background():
    from snapaction.mask.motion import motion_masks

    frames, truth = blob_clip()
    masks = motion_masks(frames)
    assert masks.shape == truth.shape and masks.dtype == bool
    assert iou(masks, truth) >= 0.8
    assert min(iou(m, t) for m, t in zip(masks, truth)) >= 0.6  # every frame, not only on average
    assert not motion_masks(frames[:1]).any()  # one frame: no motion, an empty mask (reported, not guessed)


def test_fills_replace_exactly_the_background():
    from snapaction.mask.masker import MEAN_FILL, fill_background, resize_masks

    frames = np.full((2, 4, 6, 3), 200, np.uint8)
    frames[:, :, :3] = 10
    masks = np.zeros((2, 2, 3), bool)
    masks[:, :, 0] = True  # the left third at half size -> the left two columns at full size
    big = resize_masks(masks, 4, 6)
    assert big[:, :, :2].all() and not big[:, :, 2:].any()
    black = fill_background(frames, big, "black")
    assert (black[:, :, :2] == 10).all() and (black[:, :, 2:] == 0).all()
    mean = fill_background(frames, big, "mean")
    assert (mean[:, :, 2:] == np.array(MEAN_FILL)).all() and (mean[:, :, :2] == 10).all()
    blur = fill_background(frames, big, "blur")
    assert (blur[:, :, :2] == 10).all() and 10 < blur[0, 0, 2, 0] < 200  # the blur mixes the background's colours


@pytest.fixture
def blob_clips(tmp_path) -> Path:
    """ROOT/<class>/*.mp4: two classes of lossless moving-blob clips (2 each), and one still clip listed as 'still'."""
    root = tmp_path / "blobs"
    for label, colour in (("pink", (240, 60, 200)), ("cyan", (40, 220, 230))):
        for i in range(2):
            write_video(root / label / f"{label}{i}.mp4", blob_clip(seed=i, colour=colour)[0])
    still, _ = blob_clip(seed=5)
    write_video(root / "pink" / "still.mp4", np.repeat(still[:1], 16, 0))
    return root


def test_mask_command_caches_masks_lists_empty_ones_and_reruns_without_work(blob_clips, tmp_path, capsys):
    from snapaction.cli import main
    from snapaction.mask.cache import mask_dir

    cache = tmp_path / "cache"
    args = ["mask", str(blob_clips), "--method", "motion", "--backbone", "scratch", "--cache-dir", str(cache)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "motion masks of 5 clips (5 computed now, 0 from the cache" in out
    assert "empty mask" in out and "still.mp4" in out  # listed, never silently used
    entries = sorted(mask_dir(cache).rglob("*.npz"))
    assert len(entries) == 5 and not list(mask_dir(cache).rglob("*.tmp"))
    entries[0].write_bytes(b"not a mask")  # a damaged entry is computed again, the others are read
    assert main(args) == 0
    assert "(1 computed now, 4 from the cache" in capsys.readouterr().out
    png = tmp_path / "strip.png"
    assert main(["mask", "--preview", str(blob_clips / "pink" / "pink0.mp4"), "--method", "motion", "--frames", "4",
                 "--out", str(png), "--cache-dir", str(cache)]) == 0
    from PIL import Image

    assert Image.open(png).size == (4 * 80, 60)


def test_train_with_mask_computes_each_clip_once_and_prediction_masks_like_training(blob_clips, tmp_path, monkeypatch):
    """Masks are computed before epoch 1 and never again (epoch 2 computes none); the run remembers its masking,
    and a new clip is masked at prediction exactly as validation masked it."""
    import snapaction.mask.motion as motion
    from snapaction.mask.masker import MEAN_FILL
    from snapaction.data.dataset import ClipDataset, ClipTransform
    from snapaction.data.layout import Sample
    from snapaction.predict import Predictor
    from snapaction.run import RunInfo
    from snapaction.training import TrainConfig, train

    calls = []
    real = motion.motion_masks
    monkeypatch.setattr(motion, "motion_masks", lambda frames: calls.append(len(frames)) or real(frames))
    data = tmp_path / "data"
    for label, colour in (("pink", (240, 60, 200)), ("cyan", (40, 220, 230))):
        for i in range(2):
            write_video(data / label / f"{label}_g{i}.mp4", blob_clip(t=12, h=40, w=48, seed=i, colour=colour)[0])
    result = train(TrainConfig(data=str(data), out=str(tmp_path / "run"), backbone="scratch", epochs=2, batch_size=4,
                               cache_dir=str(tmp_path / "cache"), mask="motion", mask_fill="mean", val_fraction=0.5))
    assert len(calls) == 4 and result.epochs_run == 2  # four clips, each masked once, in two epochs
    info = RunInfo.load(result.run_dir)
    assert info.masking["method"] == "motion" and info.masking["fill"] == "mean"

    predictor = Predictor.load(result.run_dir)
    assert predictor.masker is not None and predictor.masker.masking.fill == "mean"
    new = write_video(tmp_path / "new.mp4", blob_clip(t=12, h=40, w=48, seed=9)[0])
    x = predictor.views(new)
    assert len(calls) == 5  # the new clip's masks: computed once...
    predictor.predict(new, views=2)
    assert len(calls) == 5  # ...and not again for more views
    val = ClipDataset([Sample(new, "pink", "g")], ["cyan", "pink"], predictor.sampling, predictor.preprocessing.size,
                      train=False, transform=ClipTransform(predictor.preprocessing), masker=predictor.masker)
    assert np.array_equal(val[0][0].numpy(), x[0].numpy())

    from fastapi.testclient import TestClient
    from PIL import Image
    import base64
    import io

    from snapaction.web.app import create_app

    (tmp_path / "uploads").mkdir()
    client = TestClient(create_app(predictor, tmp_dir=tmp_path / "uploads"))
    reply = client.post("/api/predict", files={"video": ("new.mp4", new.read_bytes(), "video/mp4")}).json()
    assert reply["masked"].startswith("data:image/png;base64,")  # the page shows what the model saw
    strip = np.asarray(Image.open(io.BytesIO(base64.b64decode(reply["masked"].split(",", 1)[1]))).convert("RGB"))
    assert strip.shape[1] == 8 * strip.shape[0] * 48 // 40 and (strip == MEAN_FILL).all(-1).mean() > 0.5
    assert len(calls) == 5  # the upload is the same clip: its masks came from the cache
    windows = predictor.timeline(new)
    assert windows and len(calls) == 5 + len(windows)  # a timeline masks each window's own frames once...
    predictor.timeline(new)
    assert len(calls) == 5 + len(windows)  # ...and reads them back the next time

    predictor.masker = None
    assert not np.array_equal(predictor.views(new).numpy(), x.numpy())  # the masking did change what the model sees


def test_a_manifest_prompt_that_cannot_be_read_is_named(tmp_path):
    from snapaction.errors import DataError
    from snapaction.mask.prompts import manifest_prompts

    manifest = tmp_path / "list.csv"
    manifest.write_text("path,label,box\na.mp4,x,10 10 40 30\nb.mp4,x,\nc.mp4,x,10 10 5\n")
    with pytest.raises(DataError, match=r"line 4 of .*list.csv has box '10 10 5'; write it as 4 numbers"):
        manifest_prompts(manifest)
    manifest.write_text("path,label,box\na.mp4,x,10 10 40 30\nb.mp4,x,\n")
    prompts = manifest_prompts(manifest)
    assert list(prompts.values())[0].box == (10.0, 10.0, 40.0, 30.0) and len(prompts) == 1


# --- person: MediaPipe's selfie segmentation on a real clip -------------------------------


def test_person_masks_find_the_person_in_a_real_clip():
    pytest.importorskip("mediapipe", reason="person masks need the pose extra: pip install 'snapaction[pose]'")
    from snapaction.mask.masker import Masker
    from snapaction.mask.settings import Masking

    clip = REAL_CLIPS / "drink_water.avi"
    assert clip.is_file(), f"the shared real clips are missing: expected {clip}"
    from snapaction.video import probe

    masker = Masker(Masking("person"), cache_dir=Path("/nonexistent-never-written"))
    masker.cache.write = lambda entry, masks: None  # nothing to keep from this test
    masks = masker.masks(clip, np.array([20, 80]), probe(clip))
    share = masks.mean(axis=(1, 2))
    # NTU's camera sees the whole room: the one person standing in it fills a few percent of the frame
    assert ((share > 0.005) & (share < 0.10)).all(), share
    xs = np.nonzero(masks.any(axis=1))[-1] / masks.shape[2]
    assert 0.4 < np.median(xs) < 0.65  # where she stands, a little right of the centre


# --- sam2: the real code path on a tiny random checkpoint ----------------------------------


def save_tiny_sam2(folder: Path) -> Path:
    """A random SAM 2 video model of ~1.3M parameters on 64x64 inputs, saved as hub checkpoints are."""
    import torch
    from transformers import Sam2VideoConfig, Sam2VideoModel
    from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

    s, h = 64, 128  # the memory attention reads 64 channels; hidden sizes must be a multiple above it
    config = Sam2VideoConfig(
        vision_config=dict(
            backbone_config=dict(model_type="sam2_hiera_det_model", hidden_size=16, image_size=[s, s],
                                 embed_dim_per_stage=[16, 32, 64, 128], blocks_per_stage=[1, 1, 2, 1],
                                 num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 4, 4, 4],
                                 global_attention_blocks=[3], window_positional_embedding_background_size=[2, 2]),
            backbone_channel_list=[128, 64, 32, 16], backbone_feature_sizes=[[s // 4] * 2, [s // 8] * 2, [s // 16] * 2],
            fpn_hidden_size=h),
        prompt_encoder_config=dict(hidden_size=h, image_size=s, patch_size=16),
        mask_decoder_config=dict(hidden_size=h, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=h),
        image_size=s, memory_attention_hidden_size=h, memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[s // 16] * 2, memory_encoder_hidden_size=h, memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=h, memory_fuser_embed_dim=h, memory_fuser_intermediate_dim=64, num_maskmem=2,
    )
    torch.manual_seed(0)
    Sam2VideoModel(config).save_pretrained(folder)
    Sam2VideoVideoProcessor(size={"height": s, "width": s}).save_pretrained(folder)
    return folder


def test_sam2_runs_from_a_saved_checkpoint_with_a_manifest_box_and_caches(tmp_path):
    from snapaction.mask.masker import masker_for
    from snapaction.mask.settings import Masking

    checkpoint = save_tiny_sam2(tmp_path / "sam2")
    frames, _ = blob_clip(t=4, h=48, w=64)
    write_video(tmp_path / "clips" / "a.mp4", frames)
    manifest = tmp_path / "clips" / "list.csv"
    manifest.write_text("path,label,box\na.mp4,pink,4 8 40 40\n")
    masker = masker_for(Masking("sam2", checkpoint=str(checkpoint)), tmp_path / "cache", manifest)
    clip = tmp_path / "clips" / "a.mp4"
    masks = masker.grid_masks(clip, 4)
    assert masks.shape == (4, 48, 64) and masks.dtype == bool and masker.computed == 1
    assert np.array_equal(masker.grid_masks(clip, 4), masks) and masker.computed == 1  # from the cache
    other = masker_for(Masking("sam2", checkpoint=str(checkpoint)), tmp_path / "cache")  # no manifest: prompted automatically
    assert not np.array_equal(other.grid_masks(clip, 4), masks) and other.computed == 1  # another prompt, another entry


def test_sam2_says_how_to_fetch_a_missing_checkpoint_before_reading_clips(tmp_path, monkeypatch, capsys):
    from snapaction.cli import main

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    assert main(["mask", str(tmp_path / "no-clips-here"), "--method", "sam2"]) == 2
    err = capsys.readouterr().err
    assert "'facebook/sam2.1-hiera-tiny' is not on this machine: fetch it once with `hf download facebook/sam2.1-hiera-tiny`" in err
