"""The learning curve: sizes, nested draws, the verdict, the plot, and one tiny real curve."""

from __future__ import annotations

import json

import pytest

from conftest import solid_clip, write_video
from snapaction.training.curve import CurveConfig, CurveResult, default_sizes, learning_curve, nested_draws, plot_curve, summarise
from snapaction.data.dataset import Sample
from snapaction.errors import ConfigError


def test_default_sizes():
    assert default_sizes(40) == [5, 10, 20, 40]
    assert default_sizes(30) == [5, 10, 20, 30]  # every clip, when clearly more than the last doubling
    assert default_sizes(22) == [5, 10, 20]
    assert default_sizes(3) == [3]


def test_draws_are_nested_and_seeded():
    pool = [Sample(f"{c}{i}.mp4", c, f"{c}{i}") for c in "ab" for i in range(12)]
    one, again, other = nested_draws(pool, 0), nested_draws(pool, 0), nested_draws(pool, 1)
    assert one == again and one != other
    assert sorted(one) == ["a", "b"] and all(len(v) == 12 for v in one.values())
    assert {s.label for s in one["a"]} == {"a"}
    # the draw of size n is the first n clips of the order, so size 5 lies inside size 10
    assert set(one["a"][:5]) <= set(one["a"][:10])


def rows(*values):
    out = []
    for size, accs in values:
        n = len(accs)
        mean = sum(accs) / n
        std = (sum((a - mean) ** 2 for a in accs) / (n - 1)) ** 0.5 if n > 1 else 0.0
        out.append({"size": size, "mean": mean, "std": std, "seeds": n, "values": accs, "min": min(accs), "max": max(accs)})
    return out


def test_summary_verdicts():
    rising = summarise(rows((5, [0.4, 0.42, 0.41]), (10, [0.55, 0.56, 0.54]), (20, [0.7, 0.71, 0.69])), 4, 100)
    assert "still paying off" in rising and "10 -> 20" in rising
    flat = summarise(rows((5, [0.6, 0.62, 0.61]), (10, [0.7, 0.7, 0.71]), (20, [0.705, 0.71, 0.7])), 4, 100)
    assert "flattening" in flat
    noisy = summarise(rows((10, [0.5, 0.7, 0.6]), (20, [0.55, 0.8, 0.65])), 4, 100)
    assert "within the seed-to-seed spread" in noisy
    saturated = summarise(rows((5, [0.9, 0.92]), (10, [0.99, 1.0])), 4, 100)
    assert "already" in saturated
    chance = summarise(rows((5, [0.25, 0.27]), (10, [0.26, 0.3])), 4, 100)
    assert "barely learn" in chance
    assert "one size" in summarise(rows((5, [0.5])), 2, 10)
    points = [{"size": 5, "seed": 0, "accuracy": 0.6, "train_accuracy": 1.0, "epochs": 200, "planned_epochs": 200},
              {"size": 10, "seed": 0, "accuracy": 0.6, "train_accuracy": 0.5, "epochs": 7, "planned_epochs": 100}]
    cautious = summarise(rows((5, [0.6]), (10, [0.6])), 4, 100, points)
    assert "1 of 2 models stopped at the --max-minutes budget" in cautious and "sizes [10]" in cautious
    assert "fit only 0.50 of their own training clips" in cautious
    assert "caution" not in summarise(rows((5, [0.6]), (10, [0.6])), 4, 100, points[:1])
    # the table lists every size
    assert rising.splitlines()[1].split()[:2] == ["5", "0.410"]


def test_plot_curve(tmp_path):
    plot_curve(rows((5, [0.4, 0.5, 0.45]), (10, [0.6, 0.62, 0.58]), (20, [0.7, 0.75, 0.72])), 4, tmp_path / "curve.png", "x")
    data = (tmp_path / "curve.png").read_bytes()
    assert data[:4] == b"\x89PNG" and len(data) < 100_000


def test_by_size_statistics():
    result = CurveResult(["a", "b"], 10, [
        {"size": 5, "seed": 0, "accuracy": 0.5}, {"size": 5, "seed": 1, "accuracy": 0.7}, {"size": 10, "seed": 0, "accuracy": 0.9},
    ], "", None)
    five, ten = result.by_size()
    assert five["mean"] == pytest.approx(0.6) and five["std"] == pytest.approx(0.1414, abs=1e-3) and five["seeds"] == 2
    assert ten["std"] == 0.0 and ten["values"] == [0.9]


def test_config_checks():
    with pytest.raises(ConfigError) as err:
        CurveConfig(data="", seeds=0, sizes=[0], backbone="scratch", finetune="probe")
    text = str(err.value)
    assert "no data" in text and "seeds" in text and "sizes" in text and "pretrained" in text
    assert CurveConfig(data="x").mode == "probe"
    scratch = CurveConfig(data="x", backbone="scratch")
    assert scratch.mode == "full" and scratch.model_minutes == 1.5
    # scratch models see about the same number of clips at every size, within 20-200 epochs
    assert [scratch.model_epochs(n) for n in (10, 20, 160, 1000)] == [200, 200, 25, 20]
    assert CurveConfig(data="x").model_minutes is None and CurveConfig(data="x").model_epochs(20) == 30
    assert CurveConfig(data="x", backbone="scratch", epochs=3).model_epochs(20) == 3


@pytest.fixture(scope="module")
def curve_data(tmp_path_factory):
    """train/<class>/ with 4 tiny clips per class and test/<class>/ with 2, classes 'red' and 'blue'."""
    root = tmp_path_factory.mktemp("curve-data")
    for label, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        for i in range(6):
            split = "train" if i < 4 else "test"
            write_video(root / split / label / f"{label}{i}.mp4", solid_clip(colour, t=8, size=16, seed=i), codec="libx264")
    return root


@pytest.mark.slow
def test_tiny_scratch_curve(curve_data, tmp_path):
    """Two sizes of the scratch preset, one seed, one epoch, scored on the held-out clips. The first point is
    left from an interrupted earlier run, so only the second trains (training is the slow part), and a rerun
    trains nothing (how seeds draw differently: test_draws_are_nested_and_seeded)."""
    out = tmp_path / "curve"
    earlier = {"size": 2, "seed": 0, "accuracy": 0.25, "macro_f1": 0.2, "train_accuracy": 0.5, "epochs": 1, "planned_epochs": 1, "seconds": 1.0}
    (out / "points").mkdir(parents=True)
    (out / "points" / "n002-seed0.json").write_text(json.dumps(earlier))
    cfg = CurveConfig(data=str(curve_data / "train"), test_data=str(curve_data / "test"), out=str(out), sizes=[2, 4],
                      seeds=1, backbone="scratch", epochs=1, batch_size=4, cache_dir=str(tmp_path / "cache"))
    result = learning_curve(cfg)
    assert [(p["size"], p["seed"]) for p in result.points] == [(2, 0), (4, 0)]
    assert result.points[0] == earlier  # reused as it was, not trained again
    trained = result.points[1]
    assert 0 <= trained["accuracy"] <= 1 and 0 <= trained["train_accuracy"] <= 1 and trained["epochs"] == 1
    assert trained["accuracy"] in (0.0, 0.25, 0.5, 0.75, 1.0)  # scored on exactly the 4 held-out clips
    assert result.held_out == 4
    saved = json.loads((out / "curve.json").read_text())
    assert [r["size"] for r in saved["by_size"]] == [2, 4] and saved["summary"] == result.summary
    assert (out / "curve.png").is_file() and len((out / "curve.csv").read_text().splitlines()) == 3
    assert not (out / "points" / "n004-seed0").exists()  # run folders are removed unless --keep-runs
    manifest = (out / "manifests" / "n004-seed0.csv").read_text().splitlines()
    assert manifest[0] == "path,label,group" and len(manifest) == 1 + 4 * 2
    again = learning_curve(cfg)  # nothing left to train
    assert again.points == result.points
