"""attn_tutorial.vit and attn_tutorial.train_vit: the Vision Transformer (shapes, errors, the patch embedding as a
linear map of flattened patches, Hugging Face's ViT copied exactly), attention rollout, the CNN baseline,
Fashion-MNIST's reader and split, and the long-run program end to end on a tiny budget."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from attn_tutorial.vit import (
    CNN, ViT, ViTConfig, attention_rollout, balanced_split, cls_attention, confusion_matrix, load_fashion_mnist,
    position_similarity, random_shift,
)

TINY = dict(image_size=8, patch_size=4, num_channels=2, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=24, num_labels=5)


def _hf_vit(transformers, **settings):
    "A tiny random Hugging Face ViTForImageClassification in float64, eval mode (nothing downloads)."
    config = transformers.ViTConfig(**{**TINY, **settings}, attn_implementation="eager")
    return transformers.ViTForImageClassification(config).double().eval()


@pytest.mark.parametrize("settings", [
    {}, {"qkv_bias": False}, {"image_size": 12, "patch_size": 3, "num_channels": 3, "num_hidden_layers": 3},
    {"layer_norm_eps": 1e-6, "num_attention_heads": 2},
], ids=["tiny", "no-qkv-bias", "patches-of-3", "eps-2-heads"])
def test_from_hf_copies_huggingfaces_vit_exactly(settings):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf = _hf_vit(transformers, **settings)
    ours = ViT.from_hf(hf)
    c = hf.config
    pixels = torch.randn(3, c.num_channels, c.image_size, c.image_size, dtype=torch.float64)
    with torch.no_grad():
        theirs, mine = hf(pixels).logits, ours(pixels)
    # Hugging Face's eager attention computes its softmax in float32 even in a float64 model
    # (`softmax(..., dtype=torch.float32)`), so an independent float64 implementation differs from it by about
    # 1e-9 (measured 8e-10 here), far above float64's 1e-16 but far below any real mistake (a wrong weight or
    # order of patches moves the logits by 1e-2 or more): 1e-7 tells the two apart.
    assert mine.shape == (3, c.num_labels) and mine.dtype == torch.float64
    assert (mine - theirs).abs().max().item() < 1e-7
    assert not ours.training and ours.config.patch_size == c.patch_size
    # the same attention weights too, layer by layer
    with torch.no_grad():
        their_maps = hf(pixels, output_attentions=True).attentions
    for w_ours, w_theirs in zip(ours.attention_maps(pixels), their_maps):
        assert (w_ours - w_theirs).abs().max().item() < 1e-7


def test_from_hf_refuses_what_it_cannot_copy():
    transformers = pytest.importorskip("transformers")
    with pytest.raises(ValueError, match="exact GELU"):
        ViT.from_hf(_hf_vit(transformers, hidden_act="gelu_new"))
    with pytest.raises(ValueError, match="copies a ViTForImageClassification, got Linear"):
        ViT.from_hf(torch.nn.Linear(2, 2))


def test_shapes_of_the_vit_its_weights_and_the_cnn():
    torch.manual_seed(0)
    vit = ViT(ViTConfig(**TINY)).eval()
    pixels = torch.rand(3, 2, 8, 8)
    assert vit(pixels).shape == (3, 5)
    assert vit.embed(pixels).shape == (3, 1 + 4, 16)                    # [CLS] and a 2 x 2 grid of patches
    maps = vit.attention_maps(pixels)
    assert len(maps) == 2 and all(w.shape == (3, 4, 5, 5) for w in maps)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(3, 4, 5))
    assert cls_attention(maps[-1]).shape == (3, 4, 4)
    assert position_similarity(vit).shape == (2, 2, 2, 2)
    assert ViT(**TINY).config == ViTConfig(**TINY)                      # a config or its settings
    assert CNN((4, 8, 16), num_channels=2, num_labels=5)(pixels).shape == (3, 5)
    # HF's layer: no dropout between the feed-forward's two linear maps; attn_dropout on the weights
    layer = ViTConfig(dropout=0.1, attn_dropout=0.2).encoder_layer()
    assert layer.dropout.p == 0.0 and layer.dropout1.p == 0.1 and layer.self_attn.dropout == 0.2
    assert layer.norm_first and layer.self_attn.batch_first


def test_errors_name_the_argument_and_the_shapes():
    vit = ViT(ViTConfig(**TINY))
    with pytest.raises(ValueError, match=r"image_size=30 must be a multiple of patch_size=4"):
        ViTConfig(image_size=30, patch_size=4)
    with pytest.raises(ValueError, match=r"pixels \(3, 1, 8, 8\) have 1 channels, the model num_channels=2"):
        vit(torch.rand(3, 1, 8, 8))
    with pytest.raises(ValueError, match=r"pixels \(3, 2, 10, 10\): an image of 10 x 10 is not a whole number"):
        vit(torch.rand(3, 2, 10, 10))
    with pytest.raises(ValueError, match=r"pixels \(3, 2, 12, 12\): the position embeddings are for image_size=8"):
        vit(torch.rand(3, 2, 12, 12))
    with pytest.raises(ValueError, match=r"pixels must be \(B, C=2, H=8, W=8\), got \(2, 8, 8\)"):
        vit(torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match="not both"):
        ViT(ViTConfig(), hidden_size=8)


def test_the_patch_embedding_is_a_linear_map_of_flattened_patches():
    torch.manual_seed(0)
    vit = ViT(ViTConfig(image_size=12, patch_size=3, num_channels=3, hidden_size=8, num_hidden_layers=1,
                        num_attention_heads=2)).double()
    pixels = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    P = 3
    # (B, C, 4, 4, P, P) -> (B, 16 patches row by row, C * P * P)
    patches = pixels.unfold(2, P, P).unfold(3, P, P).permute(0, 2, 3, 1, 4, 5).reshape(2, 16, 3 * P * P)
    conv = vit.patch_embed
    linear = patches @ conv.weight.reshape(8, -1).T + conv.bias
    strided = conv(pixels).flatten(2).transpose(1, 2)
    assert (linear - strided).abs().max().item() < 1e-10
    assert (vit.embed(pixels)[:, 1:] - (linear + vit.pos_embed[:, 1:])).abs().max().item() < 1e-10


def test_rollout_rows_sum_to_one_and_one_layer_without_residual_is_the_heads_mean():
    torch.manual_seed(0)
    weights = [torch.softmax(torch.randn(2, 3, 6, 6, dtype=torch.float64), -1) for _ in range(4)]
    rolled = attention_rollout(weights)
    assert rolled.shape == (2, 6, 6) and (rolled >= 0).all()
    assert (rolled.sum(-1) - 1).abs().max().item() < 1e-12
    assert torch.allclose(attention_rollout(weights[:1], residual=0.0), weights[0].mean(1))
    assert torch.equal(attention_rollout(weights, residual=1.0), torch.eye(6, dtype=torch.float64).expand(2, 6, 6))
    two = attention_rollout(weights[:2], residual=0.0)                   # the second layer reads the first's output
    assert torch.allclose(two, weights[1].mean(1) @ weights[0].mean(1))
    with pytest.raises(ValueError, match="residual in"):
        attention_rollout(weights, residual=2.0)
    with pytest.raises(ValueError, match=r"weights must be \(B, heads, 1 \+ N, 1 \+ N\)"):
        cls_attention(weights[0][:, :, :3])


def test_fashion_mnist_the_shipped_subset_its_split_and_its_errors(tmp_path):
    x, y = load_fashion_mnist("train")
    xt, yt = load_fashion_mnist("test")
    assert x.shape == (10_000, 1, 28, 28) and xt.shape == (10_000, 1, 28, 28) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() == 1 and torch.bincount(y).tolist() == [1000] * 10
    assert torch.bincount(yt).tolist() == [1000] * 10
    valid, rest = balanced_split(y, 1000)
    assert torch.bincount(y[valid]).tolist() == [100] * 10 and len(rest) == 9000
    assert not set(valid.tolist()) & set(rest.tolist())
    small, _ = balanced_split(y[rest], 500)
    large, _ = balanced_split(y[rest], 2000)
    assert set(small.tolist()) <= set(large.tolist())                     # the same seed: nested sets
    with pytest.raises(ValueError, match="multiple of the 10 classes"):
        balanced_split(y, 1005)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", full=True, path=tmp_path)
    with pytest.raises(ValueError, match="no split 'valid'"):
        load_fashion_mnist("valid")
    assert confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2).tolist() == [[1, 1], [0, 1]]


def test_random_shift_moves_each_image_by_at_most_two_pixels_and_mirrors_on_request():
    pixels = torch.zeros(64, 1, 28, 28)
    pixels[:, 0, 10, 5] = 1.0
    for mirror in (False, True):
        moved = random_shift(pixels, mirror=mirror, generator=torch.Generator().manual_seed(0))
        assert moved.shape == pixels.shape and torch.equal(moved.sum((1, 2, 3)), torch.ones(64))
        rows, cols = (moved[:, 0] == 1).nonzero()[:, 1:].T
        assert ((rows - 10).abs() <= 2).all()
        mirrored = (cols - 22).abs() <= 2                              # column 5 mirrored is column 22
        assert (mirrored | ((cols - 5).abs() <= 2)).all()
        assert (0 < mirrored.sum() < 64) if mirror else not mirrored.any()
        assert len(set(zip(rows.tolist(), cols.tolist()))) > 10           # a draw for each image


def test_the_long_run_trains_both_models_chooses_on_validation_and_tests_once(tmp_path):
    from attn_tutorial.train_vit import main

    tiny = ["--data", "shipped", "--valid-images", "200", "--train-images", "500", "--hidden", "16", "--layers", "1",
            "--mlp", "32", "--channels", "8,16", "--warmup", "2", "--no-progress"]
    r = main(tiny + ["--steps", "12", "--eval-every", "5", "--results", str(tmp_path / "new" / "vit_{model}.json"),
                     "--out", str(tmp_path / "w")])
    assert set(r) == {"vit", "cnn"}
    for name in ("vit", "cnn"):
        saved = json.loads((tmp_path / "new" / f"vit_{name}.json").read_text())
        assert saved["steps"] == 12 and [c["step"] for c in saved["curve"]] == [5, 10, 12]
        assert saved["valid_accuracy"] == max(c["valid_accuracy"] for c in saved["curve"])
        best = next(c for c in saved["curve"] if c["valid_accuracy"] == saved["valid_accuracy"])
        assert saved["best_step"] == best["step"]                        # the kept weights are the best validation's
        assert saved["test"]["images"] == 10_000 and sum(map(sum, saved["test"]["confusion"])) == 10_000
        assert 0 <= saved["test"]["accuracy"] <= 1 and saved["data"]["train_images"] == 500
        assert saved["provenance"]["command"].startswith("python -m attn_tutorial.train_vit --data shipped")
        assert (tmp_path / "w" / f"{name}.pt").is_file()
    assert len(r["vit"]["test"]["position_similarity"]) == 7 ** 4          # 7 x 7 patches of 4 pixels
    vit = ViT(ViTConfig(hidden_size=16, num_hidden_layers=1, intermediate_size=32))
    vit.load_state_dict(torch.load(tmp_path / "w" / "vit.pt"))           # the weights are the whole model
    # a timed run stops at the first step past its time
    timed = main(tiny + ["--models", "cnn", "--minutes", "0.02", "--eval-every", "1000",
                         "--results", str(tmp_path / "t_{model}.json"), "--out", str(tmp_path)])
    assert timed["cnn"]["steps"] > 1 and 1.2 <= timed["cnn"]["train_seconds"] < 1.2 + 10


def _long_run_on_two_processes(rank, port, out):
    import os

    from attn_tutorial.train_vit import main

    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    r = main(["--data", "shipped", "--valid-images", "200", "--train-images", "500", "--hidden", "16", "--layers",
              "1", "--mlp", "32", "--channels", "8,16", "--steps", "6", "--eval-every", "3", "--batch-size", "16",
              "--no-progress", "--results", f"{out}/vit_{{model}}.json", "--out", out])
    with open(f"{out}/returned.{rank}", "w") as f:
        json.dump(r, f)


def test_under_torchrun_the_first_process_validates_tests_and_writes(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:                                           # a free port for the process group
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_long_run_on_two_processes, args=(port, str(tmp_path)), nprocs=2)
    first, second = (json.loads((tmp_path / f"returned.{r}").read_text()) for r in (0, 1))
    assert second is None and set(first) == {"vit", "cnn"}
    saved = json.loads((tmp_path / "vit_vit.json").read_text())
    assert saved["provenance"]["processes"] == 2 and saved["provenance"]["command"].startswith("torchrun")
    assert saved["steps"] == 6 and [c["step"] for c in saved["curve"]] == [3, 6]
    assert saved["epochs"] == 6 * 16 / 500                               # 8 images a process, two processes
