"""The masked autoencoder's pieces: masks, patches, targets, and the forward pass with and without dual masking."""

import pytest
import torch

from snapaction.pretrain.model import (
    MaskedAutoencoder, Objective, decoder_tokens, forward, patchify, reconstruction, running_cell_mask, scratch_config,
    targets, token_grid, tube_mask, unpatchify,
)

TINY = dict(image_size=16, num_frames=8, patch_size=4, tubelet_size=2, hidden_size=16, num_hidden_layers=1,
            num_attention_heads=2, intermediate_size=32, decoder_hidden_size=16, decoder_num_hidden_layers=1,
            decoder_num_attention_heads=2, decoder_intermediate_size=32)


@pytest.fixture(scope="module")
def config():
    return scratch_config("tiny", **TINY)


def test_tube_mask_hides_the_same_places_in_every_time_slice(config):
    hidden = tube_mask(config, 5, 0.75, torch.Generator().manual_seed(0))
    slices, rows, cols = token_grid(config)
    assert hidden.shape == (5, slices * rows * cols)
    per_slice = hidden.view(5, slices, rows * cols)
    assert torch.equal(per_slice, per_slice[:, :1].expand_as(per_slice))  # a tube: one place over all time
    assert per_slice[:, 0].sum(dim=1).tolist() == [12] * 5  # 75% of 16 places, the same count in every clip
    assert not torch.equal(per_slice[0, 0], per_slice[1, 0])  # each clip its own places


def test_running_cells_visit_every_place_equally_often(config):
    decode = running_cell_mask(config, 3, 0.5, torch.Generator().manual_seed(1))
    slices, rows, cols = token_grid(config)
    grid = decode.view(3, slices, rows, cols)
    assert grid.sum(dim=(2, 3)).tolist() == [[8] * slices] * 3  # half of each time slice
    for r in range(0, rows, 2):  # in each 2x2 cell, two of four places per slice
        for c in range(0, cols, 2):
            assert grid[:, :, r:r + 2, c:c + 2].sum(dim=(2, 3)).eq(2).all()
    assert grid.sum(dim=1).eq(slices // 2).all()  # over the 4 slices every place is kept twice
    assert not torch.equal(grid[:, 0], grid[:, 1])  # the cell runs: the kept places move with time


def test_patchify_is_undone_by_unpatchify_and_follows_the_models_token_order(config):
    video = torch.randn(2, 8, 3, 16, 16)
    tokens = patchify(video, config)
    assert tokens.shape == (2, 4 * 4 * 4, 2 * 4 * 4 * 3)
    assert torch.equal(unpatchify(tokens, config), video)
    # token 5 is time slice 0, row 1, column 1: frames 0-1, pixels 4-7
    assert torch.equal(tokens[0, 5].view(2, 4, 4, 3), video[0, 0:2, :, 4:8, 4:8].permute(0, 2, 3, 1))


def test_normalised_targets_of_flat_patches_are_not_amplified_noise(config):
    video = torch.zeros(1, 8, 3, 16, 16) + 0.3
    video[..., :8, :8] += 0.001 * torch.randn(1, 8, 3, 8, 8)  # "sensor noise" on a flat wall
    floor = targets(video, config, Objective(target="norm-pixels", norm_floor=0.01))
    assert floor.abs().max() < 0.5  # divided by the floor, not by the noise's own tiny spread
    none = targets(video, config, Objective(target="norm-pixels", norm_floor=0.0))
    assert none.abs().max() > 1.5  # without it, the noise is blown up to unit variance
    textured = torch.randn(1, 8, 3, 16, 16)
    t = targets(textured, config, Objective(target="norm-pixels")).view(1, 64, 32, 3)
    assert torch.allclose(t.mean(dim=2), torch.zeros(1, 64, 3), atol=1e-5)  # each patch's channel: mean 0, std 1
    assert torch.allclose(t.std(dim=2), torch.ones(1, 64, 3), atol=1e-4)


def test_frame_difference_targets_are_zero_where_nothing_moves(config):
    still = torch.randn(1, 1, 3, 16, 16).repeat(1, 8, 1, 1, 1)
    assert targets(still, config, Objective(target="frame-diff")).abs().max() == 0
    moving = still.clone()
    moving[:, 4:, :, :4, :4] += 1.0  # something appears top-left in frame 4
    diff = targets(moving, config, Objective(target="frame-diff"))
    changed = diff.abs().amax(dim=2).nonzero()[:, 1].tolist()
    assert changed == [2 * 16]  # only slice 2 (frames 4-5), place 0


@pytest.mark.parametrize("decoder_ratio", [None, 0.5])
def test_forward_reconstructs_the_hidden_tubes_or_a_running_cell_subset(config, decoder_ratio):
    from transformers import VideoMAEForPreTraining

    torch.manual_seed(0)
    model = VideoMAEForPreTraining(config).eval()
    video = torch.randn(2, 8, 3, 16, 16)
    objective = Objective(mask_ratio=0.75, decoder_ratio=decoder_ratio, target="pixels")
    hidden = tube_mask(config, 2, 0.75, torch.Generator().manual_seed(2))
    decode = running_cell_mask(config, 2, decoder_ratio, torch.Generator().manual_seed(3)) if decoder_ratio else None
    step = forward(model, video, hidden, objective, decode)
    expected = int(hidden[0].sum()) if decode is None else int((hidden & decode)[0].sum())
    assert step.prediction.shape == (2, expected, 96)
    assert step.decoded.sum(dim=1).tolist() == [expected, expected]
    assert not (step.decoded & ~hidden).any()  # nothing visible is "reconstructed"
    wanted = step.target[step.decoded].view(2, expected, 96)
    assert torch.allclose(step.loss, ((step.prediction - wanted) ** 2).mean())
    assert decoder_tokens(config, objective) == (64 - int(hidden[0].sum()) + expected, expected)
    # the module form (what DDP wraps) gives the same loss and gradients reach the encoder
    module = MaskedAutoencoder(model, objective)
    loss = module(video, hidden, decode)
    assert torch.allclose(loss, step.loss)
    loss.backward()
    assert model.videomae.embeddings.patch_embeddings.projection.weight.grad.abs().sum() > 0


def test_our_forward_is_the_models_own_forward_when_every_hidden_tube_is_decoded(config):
    """Without dual masking, the decoder's output is exactly what VideoMAEForPreTraining.forward computes."""
    from transformers import VideoMAEForPreTraining

    torch.manual_seed(0)
    model = VideoMAEForPreTraining(config).eval()
    video = torch.randn(2, 8, 3, 16, 16)
    hidden = tube_mask(config, 2, 0.75, torch.Generator().manual_seed(4))
    with torch.no_grad():
        theirs = model(video, bool_masked_pos=hidden).logits
        ours = forward(model, video, hidden, Objective(mask_ratio=0.75, target="pixels")).prediction
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_reconstruction_keeps_visible_tubes_and_fills_hidden_ones_from_the_prediction(config):
    from transformers import VideoMAEForPreTraining

    model = VideoMAEForPreTraining(config).eval()
    video = torch.randn(1, 8, 3, 16, 16)
    hidden = tube_mask(config, 1, 0.5, torch.Generator().manual_seed(5))
    for target in ("pixels", "norm-pixels", "frame-diff"):
        objective = Objective(mask_ratio=0.5, target=target)
        step = forward(model, video, hidden, objective)
        # a perfect prediction rebuilds the clip exactly
        step.prediction = step.target[step.decoded].view(1, -1, step.target.shape[-1])
        rebuilt = reconstruction(step, video, hidden, config, objective)
        assert torch.allclose(rebuilt, video, atol=1e-4), target


def test_objective_names_every_bad_value():
    from snapaction.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        Objective(mask_ratio=1.0, decoder_ratio=0.0, target="edges", norm_floor=-1)
    text = str(err.value)
    for word in ("mask_ratio", "decoder_ratio", "target", "norm_floor"):
        assert word in text


def test_embedding_only_the_visible_patches_gives_the_encoders_own_output(config):
    from transformers import VideoMAEForPreTraining

    from snapaction.pretrain.model import encode_visible

    torch.manual_seed(0)
    model = VideoMAEForPreTraining(config).eval()
    video = torch.randn(3, 8, 3, 16, 16)
    hidden = tube_mask(config, 3, 0.75, torch.Generator().manual_seed(6))
    with torch.no_grad():
        theirs = model.videomae(video, bool_masked_pos=hidden).last_hidden_state
        ours = encode_visible(model.videomae, video, hidden)
    assert ours.shape == theirs.shape == (3, 16, 16)
    assert torch.allclose(ours, theirs, atol=1e-5)
