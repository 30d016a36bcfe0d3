"""attn_tutorial.hard: hard attention samples from the softmax, REINFORCE is unbiased, the straight-through
Gumbel-softmax equals PyTorch's, and masks are obeyed.

Statistical checks use fixed seeds (so they are deterministic) and tolerances of 4 standard errors computed from
the samples themselves.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attn_tutorial.hard import gumbel_softmax, reinforce_loss, sample_hard

F64 = torch.float64


def test_samples_follow_the_softmax():
    e = torch.tensor([0.3, -1.0, 1.2, 0.0, 0.5], dtype=F64)
    n = 200_000
    hs = sample_hard(e.expand(n, 1, 5), generator=torch.Generator().manual_seed(0))
    p = torch.softmax(e, 0)
    freq = torch.bincount(hs.index.flatten(), minlength=5).to(F64) / n
    se = (p * (1 - p) / n).sqrt()
    assert ((freq - p).abs() < 4 * se).all()
    assert hs.index.shape == (n, 1) and hs.weights.shape == (n, 1, 5) and hs.log_prob.shape == (n, 1)
    torch.testing.assert_close(hs.log_prob, p.log()[hs.index], rtol=0, atol=1e-15)
    assert torch.equal(hs.weights, F.one_hot(hs.index, 5).to(F64))


def test_sampling_respects_masks_and_empty_rows():
    scores = torch.zeros(3, 4, 6, requires_grad=True)
    mask = torch.zeros(3, 4, 6, dtype=torch.bool)
    mask[..., 2] = mask[..., 4] = True
    mask[1, 3] = False                                               # a query that may attend nothing
    hs = sample_hard(scores, mask, generator=torch.Generator().manual_seed(1))
    ok = mask.any(-1)
    assert set(hs.index[ok].unique().tolist()) <= {2, 4}
    assert (hs.weights[1, 3] == 0).all() and hs.log_prob[1, 3] == 0
    hs.log_prob.sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert not hs.index.requires_grad and hs.log_prob.requires_grad


@pytest.mark.parametrize("baseline", ["none", "mean reward"])
def test_reinforce_is_unbiased_against_the_closed_form(baseline):
    theta = torch.tensor([0.2, -0.4, 0.9, 0.0], dtype=F64, requires_grad=True)
    r = torch.tensor([1.0, 3.0, -2.0, 0.5], dtype=F64)
    alpha = torch.softmax(theta.detach(), 0)
    exact = alpha * (r - alpha @ r)                                  # d/dtheta of sum_j alpha_j r_j
    b = 0.0 if baseline == "none" else (alpha @ r).item()
    n = 300_000
    hs = sample_hard(theta.expand(n, 1, 4), generator=torch.Generator().manual_seed(2))
    (-reinforce_loss(hs.log_prob, r[hs.index], b)).backward()
    per_sample = (r[hs.index] - b) * (hs.weights[:, 0] - alpha)       # the estimator, one sample at a time
    torch.testing.assert_close(theta.grad, per_sample.mean(0), rtol=0, atol=1e-12)
    se = per_sample.std(0) / math.sqrt(n)
    assert ((theta.grad - exact).abs() < 4 * se).all(), (theta.grad, exact, se)


def test_baseline_reduces_variance_on_the_closed_form_problem():
    alpha = torch.softmax(torch.tensor([0.2, -0.4, 0.9, 0.0], dtype=F64), 0)
    r = torch.tensor([11.0, 13.0, 8.0, 10.5], dtype=F64)              # rewards far from 0: the baseline matters
    def total_variance(b):                                           # exact: enumerate the 4 outcomes
        g = (r - b)[:, None] * (torch.eye(4, dtype=F64) - alpha)     # estimate if key j is drawn
        mean = alpha @ g
        return (alpha @ (g - mean).pow(2).sum(1)).item()
    assert total_variance((alpha @ r).item()) < total_variance(0.0) / 20


def test_reinforce_loss_shape_check():
    with pytest.raises(ValueError, match=r"log_prob \(4, 1\) and reward \(4,\)"):
        reinforce_loss(torch.zeros(4, 1), torch.zeros(4))


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
def test_gumbel_softmax_equals_torch_under_the_same_seed(hard, tau):
    logits = torch.randn(6, 9, dtype=F64, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(11)
    ours = gumbel_softmax(logits, tau=tau, hard=hard)
    torch.manual_seed(11)
    theirs = F.gumbel_softmax(logits, tau=tau, hard=hard)
    assert torch.equal(ours, theirs)


def test_straight_through_forward_is_one_hot_backward_is_soft():
    logits = torch.randn(5, 7, dtype=F64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    c = torch.randn(5, 7, dtype=F64, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(0)
    y = gumbel_softmax(logits, tau=0.5, hard=True)
    assert torch.equal(y.sum(-1), torch.ones(5, dtype=F64)) and set(y.detach().unique().tolist()) <= {0.0, 1.0}
    (y * c).sum().backward()
    g_hard = logits.grad.clone()
    logits.grad = None
    torch.manual_seed(0)                                             # same noise: the soft relaxation
    (gumbel_softmax(logits, tau=0.5, hard=False) * c).sum().backward()
    torch.testing.assert_close(g_hard, logits.grad, rtol=0, atol=1e-15)


def test_gumbel_max_samples_follow_the_softmax_and_masks():
    e = torch.tensor([0.5, -0.5, 1.5], dtype=F64)
    n = 200_000
    torch.manual_seed(6)
    y = gumbel_softmax(e.expand(n, 3), hard=True)
    freq, p = y.mean(0), torch.softmax(e, 0)
    assert ((freq - p).abs() < 4 * (p * (1 - p) / n).sqrt()).all()
    mask = torch.tensor([[True, False, True], [False, False, False]])
    y = gumbel_softmax(torch.zeros(2, 3), mask=mask)
    assert y[0, 1] == 0 and y[0].sum() == 1 and (y[1] == 0).all()
    with pytest.raises(ValueError, match="tau must be > 0"):
        gumbel_softmax(e, tau=0)
    with pytest.raises(ValueError, match=r"mask \(2,\) does not broadcast"):
        gumbel_softmax(torch.zeros(4, 3), mask=torch.ones(2, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        sample_hard(torch.zeros(4, 3), mask=torch.ones(4, 3, dtype=torch.long))
    # a float mask is added, as in scaled_dot_product_attention: -inf forbids, like False
    forbid = torch.tensor([[0.0, float("-inf"), 0.0]] * 4)
    assert (sample_hard(torch.zeros(4, 3), mask=forbid).index != 1).all()
    assert torch.equal(gumbel_softmax(torch.zeros(4, 3), mask=torch.full((4, 3), float("-inf")))[0], torch.zeros(3))


def test_self_attention_is_permutation_equivariant_and_cross_attention_key_invariant():
    from attn_tutorial.attention import scaled_dot_product_attention as sdpa
    g = torch.Generator().manual_seed(7)
    X = torch.randn(2, 9, 12, dtype=F64, generator=g)
    Y = torch.randn(2, 4, 12, dtype=F64, generator=g)
    Wq, Wk, Wv = (torch.randn(12, 12, dtype=F64, generator=g) for _ in range(3))
    perm = torch.randperm(9, generator=g)
    mask = torch.rand(2, 9, 9, generator=g) > 0.3
    out, w = sdpa(X @ Wq, X @ Wk, X @ Wv, attn_mask=mask)
    Xp = X[:, perm]
    out_p, w_p = sdpa(Xp @ Wq, Xp @ Wk, Xp @ Wv, attn_mask=mask[:, perm][:, :, perm])
    torch.testing.assert_close(out_p, out[:, perm], rtol=0, atol=1e-12)
    torch.testing.assert_close(w_p, w[:, perm][:, :, perm], rtol=0, atol=1e-12)
    cross, _ = sdpa(Y @ Wq, X @ Wk, X @ Wv)
    cross_p, _ = sdpa(Y @ Wq, Xp @ Wk, Xp @ Wv)
    torch.testing.assert_close(cross_p, cross, rtol=0, atol=1e-12)
