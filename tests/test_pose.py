"""The pose model: MediaPipe on real clips (few frames), the landmark cache, and features/augmentation/classifiers on synthetic stick figures."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from snapaction.errors import ClipError, ConfigError, SnapActionError
from snapaction.pose import landmarks as lm_module
from snapaction.pose import LandmarkCache, Landmarks, PosePipeline, PoseSettings, fit_pose, train_pose_classifier
from snapaction.pose.augment import augment_sequence, mirror_points, mirror_sequence, warp_positions
from snapaction.pose.classifier import StatsClassifier, TemporalClassifier, load_classifier
from snapaction.pose.features import (
    dct_basis, feature_names, fill_missing, frame_features, pose_sequence, temporal_statistics,
)
from snapaction.pose.preview import skeleton_json, write_preview
from snapaction.pose.skeleton import CONNECTIONS, J, MIRROR, NAMES
from snapaction.pose.synthetic import synthetic_landmarks, synthetic_set
from snapaction.pose.training import training_pool

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-clips"
needs_real = pytest.mark.skipif(not (REAL / "drink_water.avi").exists(), reason="shared real clips not present")
FAST = dict(augment_copies=2, temporal_epochs=25, temporal_width=32)


# --- MediaPipe on real clips ---------------------------------------------------------------


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory):
    pytest.importorskip("mediapipe")
    return LandmarkCache(tmp_path_factory.mktemp("landmarks"), num_frames=4, decode_size=360)


@pytest.fixture(scope="module")
def drink(real_cache):
    return real_cache.get(REAL / "drink_water.avi")


@needs_real
def test_one_person_clip_gives_plausible_landmarks(drink):
    assert drink.num_frames == 4 and (drink.width, drink.height) == (1920, 1080)
    assert drink.present.sum() >= 3
    img, vis = drink.image[drink.present], drink.visibility[drink.present]
    nose_y, hip_y = img[:, J["nose"], 1], img[:, [J["left_hip"], J["right_hip"]], 1].mean(1)
    assert (nose_y < hip_y - 0.05).all()  # image y grows downwards
    shoulders = np.abs(img[:, J["left_shoulder"], 0] - img[:, J["right_shoulder"], 0])
    assert (shoulders > 0.01).all()
    torso = [J[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    assert np.median(vis[:, torso]) > 0.8
    assert ((img[..., :2] > -0.2) & (img[..., :2] < 1.2)).all() and np.isfinite(drink.world[drink.present]).all()
    assert np.all(np.diff(drink.times) > 0) and 0 < drink.times[0] and drink.times[-1] < 103 / 30


@needs_real
def test_two_person_clip_finds_someone(real_cache):
    hands = real_cache.get(REAL / "shaking_hands.mp4")
    assert hands.present.any()
    img = hands.image[hands.present]
    assert ((img[..., :2] > -0.2) & (img[..., :2] < 1.2)).all()
    assert np.isnan(hands.image[~hands.present]).all() and (hands.visibility[~hands.present] == 0).all()


@needs_real
def test_skeleton_tables_match_mediapipe(drink):
    mp = pytest.importorskip("mediapipe")
    assert [p.name.lower() for p in mp.solutions.pose.PoseLandmark] == list(NAMES)
    assert set(CONNECTIONS) == set(mp.solutions.pose.POSE_CONNECTIONS)


@needs_real
def test_cache_rerun_decodes_nothing_and_is_content_keyed(real_cache, drink, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(lm_module, "read_frames", fail)
    monkeypatch.setattr(lm_module, "detect", fail)
    again = real_cache.get(REAL / "drink_water.avi")
    renamed = shutil.copy(REAL / "drink_water.avi", tmp_path / "renamed.avi")
    moved = real_cache.get(renamed)  # same bytes, another name: a hit
    for other in (again, moved):
        for key, value in drink.arrays().items():
            np.testing.assert_array_equal(other.arrays()[key], value)
    assert moved.path == Path(renamed)
    other_settings = LandmarkCache(real_cache.folder, num_frames=8, decode_size=360)
    assert other_settings.entry(renamed) != real_cache.entry(renamed)


def _fake_extract(calls):
    def extract(path, num_frames, decode_size, hands=True):
        calls.append(Path(path))
        rng = np.random.default_rng(len(Path(path).read_bytes()))
        return dataclasses.replace(synthetic_landmarks("squat", rng, num_frames=num_frames), path=Path(path))

    return extract


def test_corrupt_or_interrupted_entry_is_recomputed(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(lm_module, "extract_landmarks", _fake_extract(calls))
    clip = tmp_path / "a.mp4"
    clip.write_bytes(b"x" * 100)
    cache = LandmarkCache(tmp_path / "cache", num_frames=8)
    first = cache.get(clip)
    cache.get(clip)
    assert len(calls) == 1
    (cache.entry(clip).parent / ".leftover.npz.tmp").write_bytes(b"half a file")  # an interrupted write
    cache.get(clip)
    assert len(calls) == 1
    cache.entry(clip).write_bytes(b"PK\x03\x04 not really a zip")
    again = cache.get(clip)
    assert len(calls) == 2
    np.testing.assert_array_equal(again.image, first.image)
    clip.write_bytes(b"y" * 100)  # edited clip: new content, new key
    cache.get(clip)
    assert len(calls) == 3


def test_unreadable_clip_and_missing_mediapipe_are_explained(tmp_path, monkeypatch):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ClipError) as err:
        LandmarkCache(tmp_path / "cache").get(bad)
    assert err.value.path == bad
    monkeypatch.setitem(__import__("sys").modules, "mediapipe", None)
    monkeypatch.setattr(lm_module, "_graph", None)
    with pytest.raises(SnapActionError, match=r'pip install "snapaction\[pose\]"'):
        lm_module.detect(np.zeros((1, 8, 8, 3), np.uint8))


@needs_real
def test_preview_strip_and_json(tmp_path, drink):
    out = write_preview(REAL / "drink_water.avi", tmp_path / "p.png", frames=2, size=120)
    from PIL import Image

    assert Image.open(out).size == (2 * 213, 120)
    doc = json.loads(json.dumps(skeleton_json(drink)))
    assert doc["width"] == 1920 and len(doc["frames"]) == 4 and len(doc["connections"]) == len(CONNECTIONS)
    frame = next(f for f in doc["frames"] if f["present"])
    assert len(frame["points"]) == 33 and all(len(p) == 3 for p in frame["points"])


# --- features ---------------------------------------------------------------------------


def _landmarks(image, present=None, size=(640, 480)):
    t = len(image)
    present = np.ones(t, bool) if present is None else present
    vis = np.ones((t, 33), np.float32)
    return Landmarks(image.astype(np.float32), image.astype(np.float32), vis, present, np.arange(t) / 10.0, *size, Path("clip.mp4"))


def test_normalisation_is_hip_centred_torso_scaled_and_invariant():
    lm = synthetic_landmarks("raise_arms", np.random.default_rng(0), num_frames=8, missing=0.0)
    seq = pose_sequence(lm)
    hips = seq.points[:, [J["left_hip"], J["right_hip"]]].mean(1)
    np.testing.assert_allclose(hips, 0, atol=1e-6)
    torso = np.linalg.norm(seq.points[:, [J["left_shoulder"], J["right_shoulder"]], :2].mean(1), axis=1)
    assert np.median(torso) == pytest.approx(1.0, abs=1e-6)
    moved = lm.image.copy()
    moved[..., :2] = (moved[..., :2] - 0.5) * 0.6 + [0.5 + 0.1, 0.5 - 0.05]  # shrink about the centre, shift
    moved[..., 2] *= 0.6
    other = pose_sequence(dataclasses.replace(lm, image=moved))
    np.testing.assert_allclose(other.points, seq.points, atol=1e-4)
    np.testing.assert_allclose(other.root, seq.root, atol=1e-4)


def test_missing_frames_are_interpolated_and_edges_held():
    values = np.arange(6, dtype=np.float32)[:, None] * [1.0, 10.0]  # (6, 2)
    present = np.array([False, True, False, False, True, False])
    filled = fill_missing(values, present)
    np.testing.assert_allclose(filled[:, 0], [1, 1, 2, 3, 4, 4])
    np.testing.assert_allclose(filled[:, 1], [10, 10, 20, 30, 40, 40])


def test_clip_with_nobody_or_few_bodies_is_a_sequence_that_says_so():
    from snapaction.pose.features import thin_evidence

    image = np.full((8, 33, 3), np.nan)
    empty = _landmarks(image, np.zeros(8, bool))
    seq = pose_sequence(empty)
    assert seq.length == 8 and not seq.body.any() and not seq.hand_seen.any()
    assert np.all(seq.points == 0) and np.all(np.isfinite(frame_features(seq)))
    assert empty.seen() == {"frames": 8, "body": 0, "hands": 0} and thin_evidence(empty.seen())
    lm = synthetic_landmarks("squat", np.random.default_rng(0), num_frames=8, missing=0.0)
    few = dataclasses.replace(lm, present=np.array([1, 0, 0, 0, 0, 0, 0, 1], bool))
    seq = pose_sequence(few)
    assert seq.body.tolist() == [1, 0, 0, 0, 0, 0, 0, 1] and seq.length == 8
    assert thin_evidence(few.seen(), 0.5) and not thin_evidence(few.seen(), 0.25)  # 2 of 8 frames: under half, not under a quarter
    hands_only = dataclasses.replace(empty, hands=np.zeros((8, 2, 21, 3), np.float32) + 0.5,
                                     hand_present=np.ones((8, 2), bool))
    assert hands_only.seen() == {"frames": 8, "body": 0, "hands": 8} and not thin_evidence(hands_only.seen())


def test_features_have_names_and_reversal_flips_only_the_order_sensitive_statistics():
    seq = pose_sequence(synthetic_landmarks("raise_arms", np.random.default_rng(1), missing=0.0))
    frames = frame_features(seq)
    assert frames.shape == (16, len(feature_names())) and np.isfinite(frames).all()
    forward, backward = temporal_statistics(frames), temporal_statistics(frames[::-1])
    f = frames.shape[1]
    np.testing.assert_allclose(forward[: 7 * f], backward[: 7 * f], rtol=1e-5, atol=1e-5)  # mean..percentiles
    dct1 = slice(7 * f, 8 * f)
    np.testing.assert_allclose(backward[dct1], -forward[dct1], rtol=1e-4, atol=1e-4)
    wrist_y = feature_names().index("left_wrist.y")
    assert abs(forward[dct1][wrist_y]) > 0.5  # the arm rising is a large first DCT coefficient
    np.testing.assert_allclose(dct_basis(16) @ dct_basis(16).T, np.eye(3), atol=1e-5)


# --- augmentation -------------------------------------------------------------------------


def test_mirror_swaps_left_right_and_flips_x():
    points = np.random.default_rng(0).normal(size=(4, 33, 3))
    mirrored = mirror_points(points)
    np.testing.assert_array_equal(mirrored[:, J["left_wrist"], 0], -points[:, J["right_wrist"], 0])
    np.testing.assert_array_equal(mirrored[:, J["left_wrist"], 1:], points[:, J["right_wrist"], 1:])
    np.testing.assert_array_equal(mirrored[:, J["nose"], 1:], points[:, J["nose"], 1:])
    np.testing.assert_array_equal(mirror_points(mirrored), points)
    assert all(NAMES[MIRROR[i]] == n.replace("left", "#").replace("right", "left").replace("#", "right") for i, n in enumerate(NAMES))
    seq = pose_sequence(_with_left_hand(synthetic_landmarks("wave", np.random.default_rng(0))))
    twice = mirror_sequence(mirror_sequence(seq))
    for a, b in zip(dataclasses.astuple(twice), dataclasses.astuple(seq)):
        np.testing.assert_array_equal(a, b)
    once = mirror_sequence(seq)  # the left hand becomes a right hand, x negated
    assert once.hand_seen[:, 1].all() and not once.hand_seen[:, 0].any()
    np.testing.assert_array_equal(once.hand_shape[:, 1, :, 0], -seq.hand_shape[:, 0, :, 0])
    np.testing.assert_array_equal(once.hand_body[:, 1, 1], seq.hand_body[:, 0, 1])


def _with_left_hand(lm, opening=None):
    """`lm` with a left hand (21 points) at the body's left wrist, fingers spread by `opening` (T,) (default 1)."""
    t = lm.num_frames
    rng = np.random.default_rng(5)
    shape = rng.normal(0, 1, size=(21, 2)) * 0.01
    shape[0] = 0
    shape[9] = [0.0, -0.02]  # palm length 0.02 of the frame
    opening = np.ones(t) if opening is None else np.asarray(opening)
    hands = np.full((t, 2, 21, 3), np.nan, np.float32)
    wrist = lm.image[:, J["left_wrist"], :2]
    hands[:, 0, :, :2] = wrist[:, None] + shape[None] * opening[:, None, None]
    hands[:, 0, 9, :2] = wrist + shape[9]  # the palm keeps its length
    hands[:, 0, :, 2] = 0
    present = np.zeros((t, 2), bool)
    present[:, 0] = True
    return dataclasses.replace(lm, hands=hands, hand_present=present)


def test_hand_features_follow_the_grip_and_ignore_where_the_hand_is():
    lm = synthetic_landmarks("squat", np.random.default_rng(3), missing=0.0)
    t = lm.num_frames
    closing = np.linspace(1.5, 0.5, t)  # a hand closing over the clip
    seq = pose_sequence(_with_left_hand(lm, closing))
    names = feature_names()
    frames = frame_features(seq)
    spread = frames[:, names.index("left_hand.spread")]
    assert np.all(np.diff(spread) < 0) and spread[0] / spread[-1] == pytest.approx(3.0, rel=0.05)
    assert np.all(frames[:, names.index("right_hand.spread")] == 0) and np.all(frames[:, names.index("right_hand.seen")] == 0)
    assert np.all(frames[:, names.index("left_hand.seen")] == 1)
    moved = dataclasses.replace(lm, image=lm.image + np.array([0.1, -0.05, 0], np.float32))  # body and hand move together
    other = pose_sequence(_with_left_hand(moved, closing))
    np.testing.assert_allclose(other.hand_shape, seq.hand_shape, atol=1e-3)  # the grip does not depend on where
    np.testing.assert_allclose(other.hand_body, seq.hand_body, atol=1e-3)  # nor its place relative to the body
    assert not np.allclose(other.hand_frame, seq.hand_frame)  # its place in the frame does


def test_augmentation_is_seeded_and_keeps_time_forwards():
    rng = np.random.default_rng(0)
    for _ in range(50):
        pos = warp_positions(16, 16, rng)
        assert np.all(np.diff(pos) > 0) and pos[0] >= 0 and pos[-1] <= 15
    seq = pose_sequence(synthetic_landmarks("raise_arms", np.random.default_rng(2), missing=0.0))
    a = augment_sequence(seq, np.random.default_rng(5), 12)
    b = augment_sequence(seq, np.random.default_rng(5), 12)
    np.testing.assert_array_equal(a.points, b.points)
    assert a.length == 12
    wrist = J["left_wrist"] if a.points[-1, J["left_wrist"], 1] < 0 else J["right_wrist"]
    assert a.points[-1, wrist, 1] < a.points[0, wrist, 1]  # the arm still ends up, not down


# --- classifiers on synthetic motions -----------------------------------------------------


@pytest.fixture(scope="module")
def raise_vs_lower():
    rng = np.random.default_rng(0)
    motions = ["raise_arms", "lower_arms"]
    (train, ytr), (test, yte) = synthetic_set(motions, 12, rng), synthetic_set(motions, 20, rng)
    return motions, [pose_sequence(s) for s in train], ytr, [pose_sequence(s) for s in test], yte


@pytest.mark.parametrize("kind", ["stats", "temporal"])
def test_classifiers_tell_a_motion_from_its_reverse_and_reload_exactly(kind, raise_vs_lower, tmp_path):
    motions, train, ytr, test, yte = raise_vs_lower
    settings = PoseSettings(**FAST)
    pool, pool_labels = training_pool(train, ytr, settings, np.random.default_rng(0))
    cls = {"stats": StatsClassifier, "temporal": TemporalClassifier}[kind]
    extra = {"width": 32, "epochs": 25} if kind == "temporal" else {}
    model = cls(motions, **extra).fit(pool, pool_labels, np.random.default_rng(0))
    proba = model.predict_proba(test)
    assert proba.shape == (len(test), 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-6)
    assert (proba.argmax(1) == yte).mean() >= 0.9
    loaded = load_classifier(model.save(tmp_path / kind))
    assert type(loaded) is cls and loaded.classes == motions
    np.testing.assert_array_equal(loaded.predict_proba(test), proba)


def test_a_single_middle_frame_cannot_tell_them_apart(raise_vs_lower):
    from sklearn.linear_model import LogisticRegression

    _, train, ytr, test, yte = raise_vs_lower
    middle = lambda seqs: np.stack([frame_features(s)[s.length // 2, :53] for s in seqs])  # positions and angles
    baseline = LogisticRegression(max_iter=2000).fit(middle(train), ytr)
    assert 0.3 <= baseline.score(middle(test), yte) <= 0.7


def test_auto_keeps_the_better_and_ties_go_to_stats(raise_vs_lower):
    motions, train, ytr, test, yte = raise_vs_lower
    model, report = train_pose_classifier(train, ytr, test, yte, motions, PoseSettings(**FAST, classifier="auto"), seed=0)
    assert set(report.val_accuracy) == {"stats", "temporal"} and report.pool_size == len(train) * 4
    best = max(report.val_accuracy.values())
    assert report.val_accuracy[report.chosen] == best and model.kind == report.chosen
    if report.val_accuracy["stats"] == best:
        assert report.chosen == "stats"
    _, no_val = train_pose_classifier(train, ytr, [], [], motions, PoseSettings(**FAST, classifier="stats"), seed=0)
    assert no_val.chosen == "stats" and no_val.val_accuracy == {"stats": None}


# --- end to end with landmark extraction replaced ----------------------------------------


def test_fit_pose_reports_skipped_clips_and_predicts(tmp_path, monkeypatch):
    def extract(path, num_frames, decode_size, hands=True):
        name = Path(path).stem
        if name.startswith("broken"):
            raise ClipError(path, "not a readable video")
        motion = name.rsplit("_", 1)[0]
        lm = synthetic_landmarks("squat" if motion == "empty" else motion, np.random.default_rng(int(name.rsplit("_", 1)[1])), num_frames=num_frames)
        if motion == "empty":
            lm = dataclasses.replace(lm, present=np.zeros(num_frames, bool))
        return dataclasses.replace(lm, path=Path(path))

    monkeypatch.setattr(lm_module, "extract_landmarks", extract)

    def clips(motion, n, start):
        out = []
        for i in range(start, start + n):
            path = tmp_path / f"{motion}_{i}.mp4"
            path.write_bytes(path.name.encode())  # distinct content, distinct cache key
            out.append((path, "up" if motion == "raise_arms" else "down"))
        return out

    train = clips("raise_arms", 6, 0) + clips("lower_arms", 6, 0) + clips("empty", 1, 0)
    (tmp_path / "broken_0.mp4").write_bytes(b"?")
    train.append((tmp_path / "broken_0.mp4", "up"))
    val = clips("raise_arms", 3, 100) + clips("lower_arms", 3, 100)
    fit = fit_pose(train, val, ["up", "down"], PoseSettings(**FAST, classifier="stats"), tmp_path / "cache", seed=0)
    assert [(p.name, r) for p, r in fit.skipped] == [("broken_0.mp4", "not a readable video")]  # nobody in view is kept
    assert fit.report.num_train == 13 and fit.report.num_val == 6 and fit.report.val_accuracy["stats"] >= 0.8
    probs = fit.model.predict(val[0][0])
    assert set(probs) == {"up", "down"} and sum(probs.values()) == pytest.approx(1.0)
    loaded = PosePipeline.load(fit.model.save(tmp_path / "model"), cache_dir=tmp_path / "cache")
    assert loaded.settings == fit.model.settings and loaded.predict(val[0][0]) == probs
    empty, seen = loaded.predict_seen(tmp_path / "empty_0.mp4")  # nobody in view: an answer, and what was seen
    assert sum(empty.values()) == pytest.approx(1.0) and seen == {"frames": 32, "body": 0, "hands": 0}
    with pytest.raises(ClipError, match="not a readable video"):
        loaded.predict(tmp_path / "broken_0.mp4")


def test_settings_reject_bad_values_all_at_once():
    with pytest.raises(ConfigError) as err:
        PoseSettings(frames=1, classifier="svm", min_person_frames=2.0)
    text = str(err.value)
    assert "frames must be between 2 and 256, got 1" in text and "'svm'" in text and "got 2.0" in text
    assert PoseSettings.from_dict(PoseSettings().to_dict()) == PoseSettings()
    with pytest.raises(ConfigError, match="unknown pose setting 'frame'"):
        PoseSettings.from_dict({"frame": 8})
