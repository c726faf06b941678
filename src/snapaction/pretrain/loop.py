"""Masked-autoencoder pretraining: one explicit loop on Accelerate, from unlabeled clips to a backbone folder.

`pretrain(cfg)`:

1. **data**: a folder of shards (``snapaction shard``) is read as it is; a folder
   of clips is curated and sharded first, into ``OUT/pretraining/shards``
   (once: a rerun finds them). Each process streams only its own shards.
2. **model**: transformers' ``VideoMAEForPreTraining``, random at ``--size`` or
   loaded from a VideoMAE checkpoint (its decoder is new when the checkpoint
   is a classifier).
3. **loop**: tube masking (and dual masking), AdamW (0.9, 0.95), warmup +
   cosine over the epochs or the ``--max-minutes`` budget, gradient accumulation,
   mixed precision, a resumable checkpoint every few minutes, reconstruction
   previews of fixed clips, a loss curve.
4. **out**: ``OUT/`` is a backbone (``config.json``, weights,
   ``preprocessor_config.json``) that ``from_pretrained`` and ``snapaction
   train --backbone OUT`` load; ``OUT/pretraining/`` keeps the run's record.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..config import to_dict
from ..errors import BackboneError, ConfigError
from ..files import atomic_json, atomic_write
from .model import SIZES, MaskedAutoencoder, Objective, forward, reconstruction, running_cell_mask, scratch_config, tube_mask
from .settings import SCRATCH, PretrainConfig

log = logging.getLogger(__name__)

clock = time.monotonic
WORK = "pretraining"
"""``OUT/pretraining/``: the run's record (report, losses, curve, previews, checkpoint, shards made from clips)."""
PREVIEW_CLIPS = 3


@dataclass
class PretrainResult:
    out: Path
    steps: int
    epochs: int
    seconds: float
    first_loss: float
    final_loss: float
    stopped_by: str
    main_process: bool = True
    """False on every process but the first of a multi-process run (which prints and writes)."""


def pretrain(cfg: PretrainConfig, progress=None) -> PretrainResult:
    """Pretrain as `cfg` says and write the backbone to ``cfg.out``; `progress` is called with each step's
    ``{"step", "epoch", "loss", "lr", "seconds"}`` (a True answer stops the run, which is then saved in full)."""
    from accelerate.utils import set_seed

    from ..run import load_checkpoint, recover_partial_writes, save_checkpoint
    from ..training.recipe import make_accelerator

    out = Path(cfg.out).expanduser()
    work = out / WORK
    _check_out(out, cfg)
    work.mkdir(parents=True, exist_ok=True)
    for line in recover_partial_writes(work):
        log.info("%s", line)
    accelerator = make_accelerator(cfg.precision, cfg.grad_accum)
    set_seed(cfg.seed)
    model, preprocessing, started_from = build_model(cfg)
    manifest = _shards(cfg, model.config, work, accelerator)
    from .shards import ShardStream

    stream = ShardStream(manifest, rank=accelerator.process_index, world_size=accelerator.num_processes, seed=cfg.seed)
    loader = torch.utils.data.DataLoader(stream, batch_size=cfg.batch_size, num_workers=cfg.workers, collate_fn=list)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.95))
    objective = cfg.objective
    net, optimizer = accelerator.prepare(MaskedAutoencoder(model, objective), optimizer)
    unwrapped = accelerator.unwrap_model(net).model
    config = unwrapped.config
    world = accelerator.num_processes
    # Each process takes its own shards, so one may have a batch more than another in an epoch: DDP's join
    # covers the difference, and the step counter moves on by the most any process takes, on every process.
    def steps_in(epoch: int) -> int:
        batches = max(math.ceil(stream.samples_for_rank(r, world, epoch) / cfg.batch_size) for r in range(world))
        return max(1, math.ceil(batches / cfg.grad_accum))

    steps_per_epoch = steps_in(0)
    state = {"step": 0, "epoch": 0, "seconds": 0.0, "losses": [], "planned": cfg.epochs * steps_per_epoch, "stopped_by": "epochs"}
    if cfg.resume:
        state = load_checkpoint(accelerator, work)
        log.info("resuming %s after epoch %d (step %d)", out, state["epoch"], state["step"])

    def lr_at(step: int) -> float:
        total = state["planned"]
        warm = max(1, int(cfg.warmup * total))
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    snapshots = sorted(m for m in cfg.snapshots if m * 60 > state["seconds"])
    fixed = _preview_clips(manifest, config, preprocessing) if accelerator.is_main_process else None
    started = clock() - state["seconds"]
    last_checkpoint = clock()
    bar = _bar(accelerator, state["planned"], state["step"])
    asked = False
    try:
        while state["epoch"] < cfg.epochs and state["step"] < state["planned"] and not asked:
            epoch_start = state["step"]
            this_epoch = steps_in(state["epoch"])
            stream.set_epoch(state["epoch"])
            # per epoch and process: a resumed run (checkpoints fall between epochs) replays the same masks and views
            rng = np.random.default_rng([cfg.seed, state["epoch"], accelerator.process_index])
            mask_gen = torch.Generator().manual_seed(hash((cfg.seed, state["epoch"], accelerator.process_index)) % 2**62)
            net.train()
            with _join(net, world):
                for clips in loader:
                    video = _model_input(clips, config, preprocessing, rng).to(accelerator.device)
                    hidden = tube_mask(config, video.shape[0], objective.mask_ratio, mask_gen).to(accelerator.device)
                    decode = None
                    if objective.decoder_ratio is not None:
                        decode = running_cell_mask(config, video.shape[0], objective.decoder_ratio, mask_gen).to(accelerator.device)
                    with accelerator.accumulate(net):
                        for group in optimizer.param_groups:
                            group["lr"] = cfg.lr * lr_at(state["step"])
                        with accelerator.autocast():
                            loss = net(video, hidden, decode)
                        accelerator.backward(loss)
                        if accelerator.sync_gradients:
                            accelerator.clip_grad_norm_(net.parameters(), 3.0)
                        optimizer.step()
                        optimizer.zero_grad()
                    if not accelerator.sync_gradients:
                        continue
                    state["step"] += 1
                    state["seconds"] = clock() - started
                    value = float(loss.detach())  # this process's; no collective inside an uneven epoch
                    state["losses"].append([state["step"], round(state["seconds"], 2), value])
                    if world == 1:
                        state["planned"] = _planned(cfg, state, steps_per_epoch)
                        bar.total = state["planned"]
                    bar.set_postfix(loss=f"{value:.4f}", epoch=state["epoch"] + 1)
                    bar.update(1)
                    if progress is not None and progress({"step": state["step"], "epoch": state["epoch"] + 1, "loss": value,
                                                          "lr": cfg.lr * lr_at(state["step"]), "seconds": state["seconds"]}):
                        asked = True
                    while accelerator.is_main_process and snapshots and state["seconds"] >= snapshots[0] * 60:
                        save_backbone(unwrapped, preprocessing, work / "snapshots" / f"{snapshots.pop(0):g}min")
                    if fixed is not None and cfg.preview_every and state["step"] % cfg.preview_every == 0:
                        write_preview(unwrapped, fixed, objective, work / "previews" / f"step-{state['step']:06d}.png", accelerator.device)
                    if state["step"] >= state["planned"] or (asked and world == 1):
                        break
            state["step"] = max(state["step"], min(state["planned"], epoch_start + this_epoch))
            finished = state["step"] - epoch_start >= this_epoch
            state["epoch"] += 1 if finished else 0
            # decisions every process takes together, between epochs
            state["seconds"] = _agree(accelerator, clock() - started)
            asked = bool(_agree(accelerator, float(asked), "max"))
            if world > 1:
                state["planned"] = int(_agree(accelerator, _planned(cfg, state, steps_per_epoch)))
                bar.total = state["planned"]
            if not finished:
                break
            if _agree(accelerator, float(clock() - last_checkpoint >= cfg.checkpoint_minutes * 60), "max"):
                save_checkpoint(accelerator, work, state)
                last_checkpoint = clock()
    except KeyboardInterrupt:
        raise ConfigError(
            f"pretraining stopped at step {state['step']}; continue it from its last checkpoint with "
            f"`snapaction pretrain {cfg.data} --out {cfg.out} --resume`"
        ) from None
    finally:
        bar.close()
    if not state["losses"]:
        raise ConfigError(f"no pretraining step was taken in {cfg.out}: the data has no clips to read, or --epochs is 0")
    if asked:
        state["stopped_by"] = "asked"
    elif state["epoch"] < cfg.epochs or state["planned"] < cfg.epochs * steps_per_epoch:
        state["stopped_by"] = "minutes"
    save_checkpoint(accelerator, work, state)
    ends = max(1, min(10, len(state["losses"]) // 2))  # steps averaged at each end: a short run's two ends never overlap
    result = PretrainResult(out=out, steps=state["step"], epochs=state["epoch"], seconds=state["seconds"],
                            first_loss=float(np.mean([r[2] for r in state["losses"][:ends]])),
                            final_loss=float(np.mean([r[2] for r in state["losses"][-ends:]])), stopped_by=state["stopped_by"],
                            main_process=accelerator.is_main_process)
    # every process takes part: under FSDP the full weights are gathered from the shards of all of them
    weights = {k.removeprefix("model."): v for k, v in accelerator.get_state_dict(net).items()}
    if accelerator.is_main_process:
        write_preview(unwrapped, fixed, objective, work / "previews" / "final.png", accelerator.device)
        save_backbone(unwrapped, preprocessing, out, weights)
        plot_loss(state["losses"], work / "loss.png")
        atomic_json(work / "report.json", {
            "snapaction": __version__, "started_from": started_from, "data": str(cfg.data), "clips": manifest.samples,
            "config": to_dict(cfg), "result": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(result).items() if k != "main_process"},
            "processes": accelerator.num_processes, "precision": accelerator.mixed_precision,
        })
    accelerator.wait_for_everyone()
    return result


# --- model ---------------------------------------------------------------------


def build_model(cfg: PretrainConfig):
    """(VideoMAEForPreTraining, its preprocessing, where it started): random at `cfg.size`, or a checkpoint."""
    from transformers import VideoMAEForPreTraining

    from ..preprocess import Preprocessing

    if cfg.backbone == SCRATCH:  # (on --resume the checkpoint's weights replace these)
        config = scratch_config(cfg.size)
        return VideoMAEForPreTraining(config), scratch_preprocessing(config), f"random weights, size {cfg.size}"
    from transformers import AutoConfig

    from ..models.hub import resolve_backbone

    folder = resolve_backbone(cfg.backbone)
    config = AutoConfig.from_pretrained(folder)
    if config.model_type != "videomae":
        raise BackboneError(f"pretraining continues VideoMAE checkpoints only; {cfg.backbone!r} is a {config.model_type} model: "
                            "pass --backbone scratch or a VideoMAE hub id or folder")
    config.use_mean_pooling = True
    model, info = VideoMAEForPreTraining.from_pretrained(folder, config=config, output_loading_info=True)
    new = sorted({k.split(".")[0] for k in info.get("missing_keys", [])})
    if new:
        log.info("%s: new modules %s (the checkpoint has no decoder: it is learnt from scratch)", cfg.backbone, new)
    return model, Preprocessing.from_backbone(folder), f"{cfg.backbone}"


def scratch_preprocessing(config):
    """What a model SnapAction starts from random weights sees: the centre crop of frames resized to 8/7 of it
    (as 224 of 256), normalised with one mean and spread for all channels (no ImageNet statistics apply)."""
    from ..preprocess import Preprocessing

    side = config.image_size
    return Preprocessing(size=round(side * 8 / 7), crop=(side, side), mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225))


def _param_groups(model, weight_decay: float) -> list[dict]:
    """No weight decay on biases, norms and the mask token, as MAE does."""
    decay, plain = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (plain if p.ndim < 2 or name.endswith("mask_token") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def save_backbone(model, preprocessing, out: Path, weights: dict | None = None) -> None:
    """``OUT/`` as a backbone: the model (encoder and decoder, so pretraining can continue from it), its
    preprocessing as a VideoMAE processor config, written so a reader sees the old files or the new ones."""
    from ..files import temp_dir, move_files_into

    out.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(out, ".weights-")
    try:
        model.config.architectures = ["VideoMAEForPreTraining"]
        model.save_pretrained(tmp, state_dict=weights, safe_serialization=True)
        (tmp / "preprocessor_config.json").write_text(json.dumps(processor_config(preprocessing, model.config), indent=2) + "\n")
        move_files_into(tmp, out)
    finally:
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


def processor_config(preprocessing, config) -> dict:
    """A ``VideoMAEImageProcessor`` config that `snapaction.preprocess.Preprocessing.from_backbone` reads back the same."""
    return {
        "image_processor_type": "VideoMAEImageProcessor",
        "do_resize": True, "size": {"shortest_edge": preprocessing.size},
        "do_center_crop": True, "crop_size": {"height": preprocessing.crop[0], "width": preprocessing.crop[1]},
        "do_rescale": True, "rescale_factor": preprocessing.rescale,
        "do_normalize": True, "image_mean": list(preprocessing.mean), "image_std": list(preprocessing.std),
        "resample": 2, "num_frames": config.num_frames,
    }


# --- data ----------------------------------------------------------------------


def _shards(cfg: PretrainConfig, config, work: Path, accelerator):
    """The shards to read: `cfg.data` itself when it holds shards, else shards curated from its clips (made once)."""
    from .shards import open_shards

    data = Path(cfg.data).expanduser()
    if (data / "manifest.json").is_file():
        return open_shards(data)
    if not data.is_dir():
        raise ConfigError(f"{data} is not a folder: pass a folder of unlabeled clips, or of shards written by `snapaction shard`")
    folder = work / "shards"
    if accelerator.is_main_process:
        from .curate import curate
        from .shards import write_shards

        curation = curate(data, cut_seconds=cfg.cut_seconds, min_frames=config.num_frames)
        atomic_write(work / "curation.txt", curation.report())
        print(curation.report())
        readers = accelerator.num_processes * max(1, cfg.workers)  # each needs a shard of its own
        per_shard = max(1, min(64, len(curation.kept) // readers))
        write_shards(curation, folder, num_frames=_grid(config), size=round(config.image_size * 8 / 7), clips_per_shard=per_shard)
    accelerator.wait_for_everyone()
    return open_shards(folder)


def curation_report(cfg: PretrainConfig) -> str:
    """What pretraining on `cfg.data` would use and leave out (the clips of a shard folder as they are)."""
    from .curate import curate
    from .shards import open_shards

    data = Path(cfg.data).expanduser()
    if (data / "manifest.json").is_file():
        return open_shards(data).summary()
    if cfg.backbone == SCRATCH:
        frames = SIZES[cfg.size]["num_frames"]
    else:  # the checkpoint's own frame count, as the run curates with (its config alone: no weights load)
        from transformers import AutoConfig

        from ..models.hub import resolve_backbone

        frames = AutoConfig.from_pretrained(resolve_backbone(cfg.backbone)).num_frames
    return curate(data, cut_seconds=cfg.cut_seconds, min_frames=frames).report()


def _grid(config) -> int:
    """Frames stored per clip: twice what the model sees, at least 16 (as fine-tuning's cache grid)."""
    return max(16, 2 * config.num_frames)


def _model_input(clips: list[torch.Tensor], config, preprocessing, rng: np.random.Generator) -> torch.Tensor:
    """uint8 (G, H, W, 3) grids (widths may differ) -> normalised (B, T, 3, S, S): frames spread over the grid with jitter, a random
    resized crop (scale 0.4-1) and a horizontal flip half the time, as VideoMAE's multi-scale crop."""
    from ..augment import hflip, random_resized_crop
    from ..data.sampling import uniform_indices

    out = []
    mean = torch.tensor(preprocessing.mean).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing.std).view(1, 3, 1, 1)
    for clip in clips:
        idx = uniform_indices(clip.shape[0], config.num_frames, rng.random(config.num_frames))
        video = clip[torch.from_numpy(idx)].permute(0, 3, 1, 2).float() / 255
        video = random_resized_crop(video, config.image_size, scale=(0.4, 1.0), rng=rng)
        if rng.random() < 0.5:
            video = hflip(video)
        out.append((video - mean) / std)
    return torch.stack(out)


def _eval_input(clips: torch.Tensor, config, preprocessing) -> torch.Tensor:
    """The fixed view of each clip: frames in the middle of their segments, the centre crop."""
    from ..data.sampling import uniform_indices

    out = []
    for clip in clips:
        idx = uniform_indices(clip.shape[0], config.num_frames)
        out.append(preprocessing(np.asarray(clip)[idx]))
    return torch.stack(out)


def _preview_clips(manifest, config, preprocessing):
    from .shards import ShardStream

    stream = ShardStream(manifest, rank=0, world_size=1, seed=0, shuffle_buffer=1)
    stream.set_epoch(0)
    clips = []
    for clip in stream:
        clips.append(torch.as_tensor(np.asarray(clip)))
        if len(clips) == PREVIEW_CLIPS:
            break
    return _eval_input(clips, config, preprocessing), preprocessing


# --- previews and curves -------------------------------------------------------


@torch.no_grad()
def write_preview(model, fixed, objective: Objective, path: Path, device) -> None:
    """A PNG: for each fixed clip, a row of its frames, a row with the hidden tubes greyed out, and a row of the
    reconstruction (hidden tubes from the model, visible ones as they were). The same masks every time."""
    from PIL import Image

    if fixed is None:
        return
    video, preprocessing = fixed
    config = model.config
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(1234)
    hidden = tube_mask(config, video.shape[0], objective.mask_ratio, generator)
    step = forward(model, video.to(device), hidden.to(device), replace(objective, decoder_ratio=None))
    rebuilt = reconstruction(step, video.to(device), hidden.to(device), config, objective).cpu()
    model.train(was_training)
    from .model import patchify, unpatchify

    tokens = patchify(video.float(), config)
    greyed = tokens.clone()
    greyed[hidden] = 0.0  # the mean colour after normalisation: grey
    masked = unpatchify(greyed, config, video.shape[2])
    mean = torch.tensor(preprocessing.mean).view(1, 1, 3, 1, 1)
    std = torch.tensor(preprocessing.std).view(1, 1, 3, 1, 1)
    rows = []
    for strip in (video, masked, rebuilt):
        pixels = ((strip * std + mean).clamp(0, 1) * 255).round().byte()  # B, T, C, H, W
        rows.append(pixels)
    b, t, _, h, w = video.shape
    gap = 2
    canvas = np.full((b * (3 * h + 2 * gap) + (b - 1) * 3 * gap, t * (w + gap) - gap, 3), 255, np.uint8)
    for i in range(b):
        for r, pixels in enumerate(rows):
            y = i * (3 * h + 5 * gap) + r * (h + gap)
            for j in range(t):
                x = j * (w + gap)
                canvas[y:y + h, x:x + w] = pixels[i, j].permute(1, 2, 0).numpy()
    image = Image.fromarray(canvas)
    if image.width < 480:  # small models see small frames: scale up so the preview can be read
        factor = math.ceil(480 / image.width)
        image = image.resize((image.width * factor, image.height * factor), Image.NEAREST)
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write(path, buf.getvalue())


def plot_loss(losses: list, path: Path) -> None:
    """``loss.png``: reconstruction loss per step (and its running mean) against steps and minutes."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r[0] for r in losses])
    values = np.array([r[2] for r in losses])
    window = max(1, len(values) // 50)
    smooth = np.convolve(values, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, values, color="0.75", linewidth=0.8, label="per step")
    ax.plot(steps[window - 1:], smooth, color="tab:blue", label=f"mean of {window}")
    ax.set_xlabel("optimizer step"), ax.set_ylabel("reconstruction loss (MSE)"), ax.legend()
    minutes = losses[-1][1] / 60
    ax.set_title(f"{len(values)} steps in {minutes:.1f} min", fontsize=10)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.14, top=0.9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, buf.getvalue())


# --- run state -----------------------------------------------------------------


def _check_out(out: Path, cfg: PretrainConfig) -> None:
    has_work = (out / WORK / "report.json").is_file() or (out / WORK / "checkpoint" / "state.json").is_file()
    if cfg.resume:
        if not (out / WORK / "checkpoint" / "state.json").is_file():
            raise ConfigError(f"{out} has no pretraining checkpoint to resume; start it without --resume")
    elif has_work or (out.is_dir() and any(p.name != WORK for p in out.iterdir())):
        raise ConfigError(f"{out} already holds a pretraining run or other files: pass a new --out, or --resume to continue it")


def _planned(cfg: PretrainConfig, state: dict, steps_per_epoch: int) -> int:
    """Optimizer steps the schedule is laid over: every epoch, or what --max-minutes allows at the pace so far."""
    most = cfg.epochs * steps_per_epoch
    if cfg.minutes is None or state["step"] < 10:
        return most
    pace = state["seconds"] / state["step"]
    return min(most, max(state["step"], round(cfg.minutes * 60 / pace)))  # once the budget is spent: here


def _agree(accelerator, value: float, how: str = "main") -> float:
    """One value for every process: the main process's, or the largest."""
    if accelerator.num_processes == 1:
        return value
    tensor = torch.tensor([float(value)], device=accelerator.device)
    if how == "max":
        gathered = accelerator.gather(tensor)
        return float(gathered.max())
    from accelerate.utils import broadcast

    return float(broadcast(tensor, from_process=0).item())


def _bar(accelerator, total: int, done: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc="pretraining", unit="step", disable=not accelerator.is_local_main_process)


def _join(net, world: int):
    """DDP's join for an epoch in which processes take different numbers of batches: one that has run out
    shadows the others' gradient averaging until all are done (torch's own Join: Accelerate's covers GPUs only)."""
    import contextlib

    if world == 1 or not isinstance(net, torch.nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    from torch.distributed.algorithms.join import Join

    return Join([net])
