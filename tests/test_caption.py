"""attn_tutorial.caption: the digits loader (deterministic, clear error when missing), disjoint stratified splits,
strips built from one split only, metrics by hand, masking, and greedy decoding of a briefly trained model."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from attn_tutorial.caption import (WORDS, Captioner, StripEncoder, caption_metrics, load_digits,
                                   make_strips, metrics_by_length, plot_attention_on_strip, split_digits)
from attn_tutorial.data import BOS, EOS, PAD, cut
from attn_tutorial.search import greedy
from attn_tutorial.train import fit, seed_everything, seq2seq_loss


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_loader_is_deterministic_and_complete(digits):
    images, labels = digits
    again_images, again_labels = load_digits()
    assert torch.equal(images, again_images) and torch.equal(labels, again_labels)
    assert images.shape == (1797, 8, 8) and images.dtype == torch.float32 and labels.shape == (1797,)
    assert images.min() == 0 and images.max() == 1 and torch.equal((images * 16).round(), images * 16)
    assert torch.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_missing_digits_say_how_to_regenerate(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"python data/digits/extract\.py"):
        load_digits(tmp_path / "digits.npz")
    monkeypatch.setattr("attn_tutorial.caption.DATA_DIR", tmp_path)          # the default path, moved away
    with pytest.raises(FileNotFoundError, match=r"digits\.npz not found: regenerate it"):
        load_digits()


def test_split_is_disjoint_stratified_and_seeded(digits):
    _, labels = digits
    train, test = split_digits(labels, 0.2, seed=0)
    assert not set(train.tolist()) & set(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(len(labels)))
    counts, held = torch.bincount(labels), torch.bincount(labels[test], minlength=10)
    assert torch.equal(held, (0.2 * counts.double()).round().long())           # round(0.2 n) of every class
    again = split_digits(labels, 0.2, seed=0)
    assert torch.equal(again[0], train) and torch.equal(again[1], test)
    assert not torch.equal(split_digits(labels, 0.2, seed=1)[1], test)
    with pytest.raises(ValueError, match="test_frac"):
        split_digits(labels, 1.0)


def test_strips_use_one_split_and_are_deterministic(digits):
    images, labels = digits
    train_idx, test_idx = split_digits(labels)
    s = make_strips(images, labels, test_idx, 50, seed=3)
    assert set(sum(s.digits, [])) <= set(test_idx.tolist())
    assert torch.equal(make_strips(images, labels, test_idx, 50, seed=3).images, s.images)
    for k in range(len(s)):
        n = len(s.digits[k])
        assert 3 <= n <= 6 and s.captions[k].tolist()[-1] == EOS and len(s.captions[k]) == n + 1
        assert s.vocab.decode(s.captions[k]) == [WORDS[labels[d]] for d in s.digits[k]]
        for d, x in zip(s.digits[k], s.starts[k]):                            # each digit is where it says
            assert torch.equal(s.images[k, :, x:x + 8], images[d])
        gaps = np.diff(s.starts[k])
        assert ((gaps >= 8) & (gaps <= 11)).all() and s.widths[k] == s.starts[k][-1] + 8
        assert s.images[k, :, s.widths[k]:].abs().sum() == 0                   # blank after the last digit
    b = next(iter(s.batches(8)))
    assert b.src.shape == (8, 8, 72) and torch.equal(b.src_len, s.widths[:8])
    assert (b.tgt_in[:, 0] == BOS).all() and torch.equal(b.tgt_in[:, 1:][b.tgt_out[:, 1:] != PAD],
                                                         b.tgt_out[:, :-1][b.tgt_out[:, 1:] != PAD])
    first = [x.src for x in s.batches(8, shuffle=True, seed=5)]
    assert all(torch.equal(x, y.src) for x, y in zip(first, s.batches(8, shuffle=True, seed=5)))
    with pytest.raises(ValueError, match="more than width=40"):
        make_strips(images, labels, test_idx, 5, width=40)


def test_metrics_by_hand():
    ref = [[1, 2, 3], [4, 5, 6], [7, 8, 9, 0]]
    pred = [[1, 2, 3], [4, 6], [7, 8, 9, 0, 1]]
    assert caption_metrics(pred, ref) == {"exact": 1 / 3, "word": 8 / 10}
    assert caption_metrics([[3, 2, 1]], [[1, 2, 3]]) == {"exact": 0.0, "word": 1 / 3}
    assert metrics_by_length(pred, ref) == {3: {"exact": 0.5, "word": 4 / 6, "n": 2},
                                            4: {"exact": 0.0, "word": 1.0, "n": 1}}
    assert [cut(t) for t in torch.tensor([[5, 6, EOS, 7], [3, PAD, 4, 8], [EOS, 3, 3, 3]])] == [[5, 6], [3, 4, 8], []]
    with pytest.raises(ValueError, match="as many predictions as references"):
        caption_metrics([[1]], [[1], [2]])


def test_encoder_masks_columns_past_the_strip():
    torch.manual_seed(0)
    enc = StripEncoder(16)
    a, mask = enc(torch.rand(3, 8, 24), torch.tensor([24, 9, 1]))
    assert a.shape == (3, 6, 16) and mask.sum(1).tolist() == [6, 3, 1]
    with pytest.raises(ValueError, match=r"images must be \(B, 8, W\)"):
        enc(torch.rand(3, 8, 22), torch.tensor([1, 1, 1]))
    with pytest.raises(ValueError, match=r"widths must be \(B,\)"):
        enc(torch.rand(3, 8, 24), torch.tensor([1, 1]))


@pytest.mark.parametrize("attention", [False, True])
def test_tiny_trained_model_decodes_valid_tokens(digits, attention):
    images, labels = digits
    train_idx, test_idx = split_digits(labels)
    train = make_strips(images, labels, train_idx, 64, seed=0)
    seed_everything(0)
    m = Captioner(len(train.vocab), emb_dim=8, hidden=16, attention=attention)
    hist = fit(m, seq2seq_loss, train.batches(16, shuffle=True), 8, lr=1e-2, progress=False, device="cpu")
    assert hist.losses[-1] < hist.losses[0]
    m.eval()
    test = make_strips(images, labels, test_idx, 5, seed=1)
    b = next(iter(test.batches(5)))
    tokens, _, w = greedy(m, b.src, b.src_len, 7, need_weights=True)
    assert tokens.shape == (5, 7) and tokens.dtype == torch.long
    after_eos = (tokens == EOS).cumsum(1) - (tokens == EOS).long() > 0               # <pad> only after <eos>
    assert ((tokens == EOS) | (tokens >= 3))[~after_eos].all() and (tokens[after_eos] == PAD).all()
    assert (tokens < len(test.vocab)).all()
    assert all(len(c) <= 7 and all(t >= 3 for t in c) for c in (cut(t) for t in tokens))
    if attention:
        assert w.shape == (5, 7, 18)
        _, mask = m.encoder(b.src, b.src_len)
        assert (w[~mask[:, None, :].expand_as(w)] == 0).all()
        torch.testing.assert_close(w.sum(-1), torch.ones(5, 7))
        one, _, w_one = greedy(m, b.src[1:2], b.src_len[1:2], 7, need_weights=True)                   # alone or in a batch: the same
        assert torch.equal(one, tokens[1:2])
        torch.testing.assert_close(w_one, w[1:2], rtol=0, atol=1e-6)
    else:
        assert w is None


def test_plot_attention_on_strip_checks_shapes():
    image, w = torch.rand(8, 16), torch.softmax(torch.randn(3, 4), -1)
    axes = plot_attention_on_strip(image, w, ["one", "two", "<eos>"])
    assert len(axes) == 4 and axes[1].get_ylabel() == "one"
    with pytest.raises(ValueError, match=r"weights \(len\(words\), W / 4\) = \(2, 4\)"):
        plot_attention_on_strip(image, w, ["one", "two"])
    plt.close("all")
