"""attn_tutorial.efficient: chunked attention equals exact attention in values (float64, 1e-10) and gradients
(1e-9) for L != S, causal masks and lengths no block divides; its backward's memory grows like N, not N^2
(measured in a fresh process); bad shapes raise ValueError."""
from __future__ import annotations

import math
import subprocess
import sys

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given, settings

from attn_tutorial.attention import scaled_dot_product_attention
from attn_tutorial.efficient import chunked_attention

F64 = torch.float64


@settings(max_examples=50)
@given(B=st.integers(1, 2), H=st.integers(1, 3), L=st.integers(1, 40), S=st.integers(1, 40), E=st.integers(1, 9),
       Ev=st.integers(1, 9), causal=st.booleans(), block=st.integers(1, 17), qblock=st.integers(1, 17),
       scale=st.one_of(st.none(), st.floats(0.05, 2.0)), seed=st.integers(0, 2**16))
def test_equals_exact_attention_in_values_and_gradients(B, H, L, S, E, Ev, causal, block, qblock, scale, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, L, E, dtype=F64, generator=g, requires_grad=True)
    k = torch.randn(B, H, S, E, dtype=F64, generator=g, requires_grad=True)
    v = torch.randn(B, H, S, Ev, dtype=F64, generator=g, requires_grad=True)
    grad = torch.randn(B, H, L, Ev, dtype=F64, generator=g)
    ours = chunked_attention(q, k, v, is_causal=causal, scale=scale, block_size=block, query_block_size=qblock)
    ref = scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)[0]
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-10)
    for a, b in zip(torch.autograd.grad(ours, (q, k, v), grad), torch.autograd.grad(ref, (q, k, v), grad)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


def test_gradcheck_and_large_scores():
    q, k, v = (torch.randn(1, 6, 4, dtype=F64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda a, b, c: chunked_attention(a, b, c, is_causal=True, block_size=2,
                                                                      query_block_size=4), (q, k, v))
    big = torch.randn(1, 50, 8) * 100                       # scores of size ~1e4: the running max keeps exp finite
    out = chunked_attention(big, big, big, block_size=7)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, scaled_dot_product_attention(big, big, big)[0], rtol=1e-5, atol=1e-4)


CHILD = """
import torch
from attn_tutorial.efficient import chunked_attention
from attn_tutorial.measure import measure_peak_mib
torch.manual_seed(0)
small = [torch.randn(1, 1, 32, 64, requires_grad=True) for _ in range(3)]
chunked_attention(*small).sum().backward()
q, k, v = (torch.randn(1, 1, {N}, 64, requires_grad=True) for _ in range(3))
print(measure_peak_mib(lambda: chunked_attention(q, k, v).sum().backward())[0])
"""


def test_backward_memory_grows_like_n_not_n_squared():
    peak = {}
    for N in (1024, 4096):
        out = subprocess.run([sys.executable, "-c", CHILD.format(N=N)], capture_output=True, text=True, check=True)
        peak[N] = float(out.stdout.split()[-1])
    weights_4096 = 4096 * 4096 * 4 / 2**20                  # one float32 (N, N) matrix: 64 MiB
    assert peak[4096] < weights_4096 / 2, peak              # generous: actual is a few MiB
    assert peak[4096] < 8 * max(peak[1024], 1.0), peak      # x4 in N: far below the x16 of N^2


@settings(max_examples=40, deadline=None)
@given(L=st.integers(1, 20), S=st.integers(0, 20), kind=st.sampled_from(["bool", "float", "bool+causal"]),
       block=st.integers(1, 7), qblock=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_masks_and_broadcast_batch_dims_as_sdpa(L, S, kind, block, qblock, seed):
    "attn_mask as in scaled_dot_product_attention (with rows that may attend nothing), batch dims that broadcast."
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(2, 3, L, 5, dtype=F64, generator=g, requires_grad=True)
    k = torch.randn(1, 3, S, 5, dtype=F64, generator=g, requires_grad=True)     # shared by the batch
    v = torch.randn(2, 1, S, 4, dtype=F64, generator=g, requires_grad=True)     # shared by the heads
    if kind == "float":
        mask = torch.where(torch.rand(L, S, generator=g) > 0.4, torch.randn(L, S, dtype=F64, generator=g), -math.inf)
    else:
        mask = torch.rand(2, 1, L, S, generator=g) > 0.5
    causal = kind.endswith("causal")
    ours = chunked_attention(q, k, v, mask, causal, block_size=block, query_block_size=qblock)
    ref = scaled_dot_product_attention(q, k, v, mask, is_causal=causal)[0]
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-10)
    grad = torch.randn(ref.shape, dtype=F64, generator=g)
    for a, b in zip(torch.autograd.grad(ours, (q, k, v), grad), torch.autograd.grad(ref, (q, k, v), grad)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


def test_double_backward_raises_a_clear_error():
    q = torch.randn(1, 5, 4, dtype=F64, requires_grad=True)
    out = chunked_attention(q, q, q, block_size=2)
    with pytest.raises(RuntimeError, match="no double backward .* use scaled_dot_product_attention"):
        torch.autograd.grad(out.sum(), q, create_graph=True)
    (g,) = torch.autograd.grad(chunked_attention(q, q, q, block_size=2).sum(), q)     # one backward works
    torch.testing.assert_close(g, torch.autograd.grad(scaled_dot_product_attention(q, q, q)[0].sum(), q)[0],
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("args, message", [
    (((2, 5, 8), (2, 7, 6), (2, 7, 4)), r"same E: query \(2, 5, 8\), key \(2, 7, 6\), value \(2, 7, 4\)"),
    (((2, 5, 8), (2, 7, 8), (2, 6, 4)), r"key \(2, 7, 8\), value \(2, 6, 4\)"),
    (((2, 5, 8), (3, 7, 8), (3, 7, 4)), "do not broadcast"),
    (((8,), (7, 8), (7, 4)), r"query must be \(\.\.\., length, features\), got shape \(8,\)"),
])
def test_bad_shapes_raise_value_errors(args, message):
    with pytest.raises(ValueError, match=message):
        chunked_attention(*(torch.randn(*s) for s in args))
    with pytest.raises(ValueError, match="block sizes"):
        chunked_attention(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4), block_size=0)
    with pytest.raises(ValueError, match=r"attn_mask \(3, 2\) does not broadcast"):
        chunked_attention(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4), torch.ones(3, 2, dtype=torch.bool))


@settings(max_examples=25, deadline=None)
@given(
    L=st.integers(1, 70), window=st.integers(1, 40), block=st.sampled_from([1, 4, 16, 64]),
    qblock=st.sampled_from([3, 16, 128]), seed=st.integers(0, 99),
)
def test_window_equals_the_masked_exact_attention(L, window, block, qblock, seed):
    "The banded tiles give the values and gradients of full attention with the window as a mask."
    from attn_tutorial.attention import causal_mask

    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, 3, L, 8, dtype=torch.float64, generator=g, requires_grad=True)
               for _ in range(3))
    band = causal_mask(L) & ~causal_mask(L, offset=-window)  # i - window < j <= i
    want, _ = scaled_dot_product_attention(q, k, v, band)
    got = chunked_attention(q, k, v, window=window, block_size=block, query_block_size=qblock)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    grads = torch.autograd.grad(want.square().sum(), (q, k, v))
    mine = torch.autograd.grad(got.square().sum(), (q, k, v))
    for a, b in zip(mine, grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_window_skips_the_blocks_outside_the_band():
    from attn_tutorial.efficient import _tiles

    # 4096 queries in tiles of 512, keys in blocks of 128, window 512: a tile visits the
    # blocks from i0 - 511 (rounded down to a block) to its own last query
    pairs = sum(len(b) for *_, b in _tiles(4096, 4096, 512, 128, False, window=512))
    causal = sum(len(b) for *_, b in _tiles(4096, 4096, 512, 128, True))
    assert pairs == 4 + 7 * 8 and causal == sum(4 * t for t in range(1, 9))
    with pytest.raises(ValueError, match="window must be >= 1, got 0"):
        chunked_attention(*torch.zeros(3, 1, 4, 2), window=0)
