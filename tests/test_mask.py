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


def pan_clip(t: int = 12, h: int = 48, w: int = 64, step: int = 3, seed: int = 0):
    """uint8 (T, H, W, 3) frames of a camera panning `step` pixels a frame to the right over a blocky texture while
    a disc moves on its own, and the disc's bool (T, H, W) true masks."""
    rng = np.random.default_rng(seed)
    scene = rng.integers(0, 256, (h // 4, (w + step * t) // 4 + 1, 3)).repeat(4, 0).repeat(4, 1).astype(np.uint8)
    frames = np.stack([scene[:h, i * step: i * step + w] for i in range(t)])
    truth = np.zeros((t, h, w), bool)
    yy, xx = np.mgrid[:h, :w]
    for i in range(t):
        truth[i] = (xx - (12 + i * (w - 24) / (t - 1))) ** 2 + (yy - (h / 2 + 6 * np.sin(i / 3))) ** 2 < 8**2
        frames[i][truth[i]] = (240, 60, 200)
    return np.clip(frames.astype(int) + rng.integers(-6, 7, frames.shape), 0, 255).astype(np.uint8), truth


@pytest.mark.parametrize("opencv", [True, False], ids=["opencv", "numpy"])
def test_motion_masks_find_the_moving_object_while_the_camera_pans(opencv, monkeypatch):
    """The camera's shift is measured (OpenCV's tracked corners, or numpy's phase correlation without OpenCV) and
    undone: the disc is found in every frame and the panning background is not foreground. Without the
    alignment, the method as it was finds nothing at all."""
    import sys

    from snapaction.mask import motion
    from snapaction.mask.camera import estimate_camera

    if not opencv:
        monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now fails, as without the pose extra
    frames, truth = pan_clip()
    camera = estimate_camera(frames)
    assert np.allclose(camera.transforms[:, 0, 2], 3 * np.arange(12), atol=0.5)  # 3 px a frame, to the right
    assert np.allclose(camera.transforms[:, 1, 2], 0, atol=0.5) and camera.moving and camera.reliable
    masks = motion.motion_masks(frames)
    assert iou(masks, truth) >= 0.75, iou(masks, truth)
    assert min(iou(m, t) for m, t in zip(masks, truth)) >= 0.5
    assert masks.mean() < 2 * truth.mean()  # the background is background
    monkeypatch.setattr(motion, "COMPENSATE", False)
    assert iou(motion.motion_masks(frames), truth) < 0.2


def test_a_still_camera_is_measured_still_and_masked_as_before():
    from snapaction.mask.camera import estimate_camera

    frames, _ = blob_clip()
    camera = estimate_camera(frames)
    assert not camera.moving and camera.displacement < 1.0 and camera.zoom < 0.01


def test_flicker_is_one_minus_the_iou_of_consecutive_masks_and_flags_name_the_outliers():
    from snapaction.mask.clips import ClipStats, MaskReport, flicker

    steady = np.zeros((4, 10, 10), bool)
    steady[:, 2:6, 2:6] = True
    assert flicker(steady) == 0.0
    jumping = np.zeros((4, 10, 10), bool)
    jumping[::2, :, :5] = True
    jumping[1::2, :, 5:] = True
    assert flicker(jumping) == 1.0  # never overlaps
    sliding = np.zeros((3, 10, 10), bool)
    sliding[0, :, 0:4], sliding[1, :, 2:6], sliding[2, :, 2:6] = True, True, True
    assert flicker(sliding) == pytest.approx(1 - (2 / 6 + 1) / 2)  # IoU 2/6, then 1
    assert flicker(np.zeros((3, 4, 4), bool)) == 0.0  # nothing to flicker

    report = MaskReport(clips=4, stats={
        "a.mp4": ClipStats(0.20, 0.10),
        "b.mp4": ClipStats(0.004, 0.0),
        "c.mp4": ClipStats(0.30, 0.80, camera_shift=0.0, camera_zoom=0.0),
        "d.mp4": ClipStats(0.95, 0.05, camera_shift=0.20, camera_zoom=0.03, camera_reliable=False),
    })
    assert [report.stats[p].flags for p in ("a.mp4", "b.mp4", "c.mp4", "d.mp4")] == [
        [], ["empty"], ["flickering"], ["near-full", "camera moving, unreliable"]]
    text = report.summary("motion", per_clip=True)
    assert "mean foreground 36.4% of the frame, mean flicker 0.24" in text
    assert "  a.mp4       20.0%     0.10  -\n" in text  # every clip's figures, flagged or not
    assert "  c.mp4       30.0%     0.80  still  <- flickering\n" in text
    assert "  d.mp4       95.0%     0.05  20% shift, 3% zoom  <- near-full; camera moving, unreliable" in text
    assert "mask flickers (flicker 0.80: consecutive masks overlap by 20%; the model sees a different cut-out each frame): c.mp4" in text
    assert ("camera moves (20% shift, 3% zoom) and the alignment is unsure: this mask is unreliable, check it with "
            "snapaction mask --preview, or use --mask person: d.mp4") in text
    assert "a.mp4" not in report.summary("motion")  # training's summary lists only the flagged clips


def test_mask_command_names_a_clip_filmed_by_a_panning_camera(tmp_path, capsys):
    from snapaction.cli import main

    write_video(tmp_path / "clips" / "pan" / "pan.mp4", pan_clip(t=16, w=80)[0])
    write_video(tmp_path / "clips" / "still" / "still.mp4", blob_clip()[0])
    assert main(["mask", str(tmp_path / "clips"), "--method", "motion", "--backbone", "scratch",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    pan = next(line for line in out.splitlines() if line.lstrip().startswith(str(tmp_path / "clips" / "pan")))
    still = next(line for line in out.splitlines() if line.lstrip().startswith(str(tmp_path / "clips" / "still")))
    assert "% shift" in pan and "<- camera moving" in pan, out
    assert " still" in still and "<-" not in still, out
    assert "frames aligned before the background was taken: " + str(tmp_path / "clips" / "pan" / "pan.mp4") in out


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
    real = motion.motion_analysis
    monkeypatch.setattr(motion, "motion_analysis", lambda frames: calls.append(len(frames)) or real(frames))
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
    masker.cache.write = lambda entry, masks, notes=None: None  # nothing to keep from this test
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


# --- --mask auto: the masking that validates best is kept ----------------------------------------


def palette_clip(rng, red: bool, warm: bool | None, size: int = 32, t: int = 6):
    """uint8 (t, size, size, 3): a red or green square moving across a still warm or cool blocky background (black
    for `warm` None)."""
    warm_cool = ((150, 40, 20), (250, 170, 60)) if warm else ((20, 60, 140), (90, 200, 230))
    low, high = (np.array(c, float) for c in (warm_cool if warm is not None else ((0, 0, 0), (0, 0, 0))))
    image = (low + rng.random((size // 4, size // 4, 1)) * (high - low)).repeat(4, 0).repeat(4, 1)
    frames = np.repeat(image[None], t, 0)
    top = int(rng.integers(2, size - 10))
    for i in range(t):
        left = 1 + i * (size - 10) // (t - 1)
        frames[i, top: top + 8, left: left + 8] = (230, 30, 30) if red else (30, 230, 30)
    return frames.astype(np.uint8)


def auto_data(root: Path, swapped_val: bool) -> tuple[Path, Path]:
    """Classes told apart by the moving square's colour. With `swapped_val`, over backgrounds that follow the
    class in training (red: warm, green: cool) and are swapped on validation: the background lies there, only what
    moves tells the classes apart. Else over black, which a black fill leaves as it is: a mask has nothing to hide."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for kind in ("red", "green"):
            warm = ((kind == "red") != (split == "val")) if swapped_val else None
            for i in range(n):
                write_video(root / split / kind / f"{kind}{i}.mp4", palette_clip(rng, kind == "red", warm))
    return root / "train", root / "val"


@pytest.mark.parametrize("swapped", [True, False], ids=["mask-helps", "tie"])
def test_mask_auto_keeps_the_masking_that_validates_best_and_a_tie_keeps_none(swapped, tmp_path, monkeypatch, capsys):
    from snapaction.mask import auto
    from snapaction.predict import Predictor
    from snapaction.run import RunInfo
    from snapaction.training import TrainConfig, train

    monkeypatch.setattr(auto, "candidates", lambda: [None, "motion"])  # person masks find no one in these clips
    train_dir, val_dir = auto_data(tmp_path / "data", swapped)
    out = tmp_path / "run"
    result = train(TrainConfig(data=str(train_dir), val_data=str(val_dir), out=str(out), backbone="scratch", epochs=3,
                               batch_size=8, cache_dir=str(tmp_path / "cache"), mask="auto", patience=0, sampling={"num_frames": 4}))
    text = capsys.readouterr().out
    record = RunInfo.load(out).masking["auto"]
    scores = record["validation_accuracy"]
    assert result.run_dir == out and (out / "metrics.csv").is_file() and record["validation_clips"] == 4
    assert "--mask auto: training 2 times to compare validation accuracy (no masks, motion masks), 3 epochs each" in text
    other = "none" if swapped else "motion"
    assert RunInfo.load(out / "mask-trials" / other).masking.get("method") == (None if swapped else "motion")  # kept whole
    if swapped:  # without masks the model reads the background, which lies on validation
        assert scores["motion"] > scores["none"], scores
        assert record["kept"] == "motion" and Predictor.load(out).masker.masking.method == "motion"
        assert f"keeping motion masks: motion masks score {scores['motion']:.3f} on validation, against {scores['none']:.3f} without masks" in text
    else:  # the masked clips are the clips: the two runs score alike
        assert scores["motion"] == scores["none"], scores
        assert record["kept"] == "none" and Predictor.load(out).masker is None
        assert f"keeping no masks: motion masks only tie it ({scores['none']:.3f}); a tie keeps the clips as they are" in text
    assert RunInfo.load(out).config["out"] == str(out)

    if not swapped:  # a comparison interrupted after a candidate finished: run again, it keeps that candidate's run
        import shutil

        again = tmp_path / "again"
        shutil.copytree(out / "mask-trials", again / "mask-trials")
        train(TrainConfig(data=str(train_dir), val_data=str(val_dir), out=str(again), backbone="scratch", epochs=3,
                          batch_size=8, cache_dir=str(tmp_path / "cache"), mask="auto", patience=0, sampling={"num_frames": 4}))
        text = capsys.readouterr().out
        assert (f"motion masks -> {again / 'mask-trials' / 'motion'} (finished by an earlier run of this comparison: kept, "
                "not trained again)") in text
        assert f"no masks -> {again / 'mask-trials' / 'none'}\n" in text  # the one that had not finished trains
        assert RunInfo.load(again).masking["auto"]["validation_accuracy"] == scores


def test_mask_auto_choice_counts_left_out_clips_and_names_failures():
    from snapaction.mask.auto import Trial, choose, describe

    plain, person, motion = Trial(None, 0.5, 4, 4, 3, 1.0), Trial("person", 0.75, 4, 4, 3, 1.0), Trial("motion", failed="every mask is empty")
    assert choose([plain, person, motion])[0] is person
    assert choose([Trial(None, 0.75, 4, 4), Trial("motion", 0.75, 4, 4)])[0].method is None
    assert describe(Trial("motion", 0.25, 3, 4, 2, 5.0)) == ("motion masks 0.250 (2 epochs, 5 s, 1 of 4 validation clips left out "
                                                             "for an empty mask (counted wrong))")
    assert describe(motion) == "motion: could not train (every mask is empty)"
