"""attn_tutorial.flash: FlashAttention-2 as three Triton kernels, run by Triton's interpreter on the CPU (compiled on
a CUDA GPU). flash_attention equals PyTorch's attention in values (float32, 2e-5) and gradients (2e-4), causal or
not, for lengths no block divides, cross-attention (Nq != Nk, causal aligned top-left as in PyTorch), a given
scale and head dims 16 to 128; in float16 it is as close to float32 as PyTorch's own float16 attention; nothing of
size Nq x Nk is saved for the backward pass; the PyTorch blocks' backward (chunked_attention) gives the same
gradients; the block sizes a GPU uses give the same numbers; unsupported inputs raise ValueError naming the
argument; the module imports without Triton."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from attn_tutorial.efficient import chunked_attention  # noqa: E402
from attn_tutorial.flash import _blocks, _flash_backward, _flash_forward, flash_attention  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def inputs(B, H, n_q, n_k, d, seed=0, dtype=torch.float32):
    "q, k, v, and an output gradient do, float32 on DEVICE, then cast to `dtype`."
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, n, d, generator=g).to(DEVICE, dtype) for n in (n_q, n_k, n_k, n_q)]


def value_and_grads(fn, q, k, v, do, **kw):
    qkv = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    out = fn(*qkv, **kw)
    return out, torch.autograd.grad(out, qkv, do)


def largest_gaps(a, b):
    (out_a, grads_a), (out_b, grads_b) = a, b
    return ((out_a.float() - out_b.float()).abs().max().item(),
            max((x.float() - y.float()).abs().max().item() for x, y in zip(grads_a, grads_b)))


CASES = [  # B, H, Nq, Nk, d, causal, scale
    (2, 2, 64, 64, 32, False, None),
    (2, 2, 64, 64, 32, True, None),
    (1, 2, 33, 70, 16, True, None),       # fewer queries than keys, no length a multiple of the blocks
    (1, 2, 70, 33, 16, True, None),       # more queries than keys: the last queries see every key
    (1, 2, 130, 70, 64, False, None),
    (1, 1, 70, 130, 48, True, 0.3),       # a padded head (48 -> 64) and a scale of our own
    (1, 1, 40, 40, 128, False, None),
    (1, 1, 1, 70, 16, True, None),        # one query: causal, it sees one key
    (1, 1, 33, 1, 16, False, None),       # one key
]


@pytest.mark.parametrize("B,H,n_q,n_k,d,causal,scale", CASES)
def test_equals_pytorch_attention_in_values_and_gradients(B, H, n_q, n_k, d, causal, scale):
    q, k, v, do = inputs(B, H, n_q, n_k, d)
    ours = value_and_grads(flash_attention, q, k, v, do, is_causal=causal, scale=scale)
    ref = value_and_grads(F.scaled_dot_product_attention, q, k, v, do, is_causal=causal, scale=scale)
    values, grads = largest_gaps(ours, ref)
    assert values < 2e-5 and grads < 2e-4, (values, grads)


def test_float16_is_as_close_to_float32_as_pytorchs_float16():
    """float16 in, float16 out, float32 inside (as PyTorch's kernels): the distance from float32 is float16's
    rounding, so the yardstick is PyTorch's own attention in float16 on the same inputs."""
    q, k, v, do = inputs(1, 2, 70, 130, 64)
    ref = value_and_grads(F.scaled_dot_product_attention, q, k, v, do, is_causal=True)
    half = [t.half() for t in (q, k, v, do)]
    ours = largest_gaps(value_and_grads(flash_attention, *half, is_causal=True), ref)
    torch_half = largest_gaps(value_and_grads(F.scaled_dot_product_attention, *half, is_causal=True), ref)
    assert ours[0] <= 2 * torch_half[0] + 1e-4, (ours, torch_half)
    assert ours[1] <= 2 * torch_half[1] + 1e-3, (ours, torch_half)


def test_bfloat16_raises_on_the_interpreter_and_runs_on_a_gpu():
    q, k, v, do = inputs(1, 1, 40, 40, 32, dtype=torch.bfloat16)
    if DEVICE == "cpu":
        with pytest.raises(ValueError, match="bfloat16"):
            flash_attention(q, k, v)
    else:
        ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
        assert (flash_attention(q, k, v).float() - ref).abs().max() < 3e-2


def test_nothing_of_size_nq_by_nk_is_saved_for_backward():
    n, d = 512, 16                                  # Nq * Nk = 262,144 against 8,192 per input
    q, k, v = (t.requires_grad_() for t in inputs(1, 1, n, n, d)[:3])
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        flash_attention(q, k, v, is_causal=True)
    assert saved and max(t.numel() for t in saved) < n * n / 8
    # q, k, v, the output and the log-sum-exp: nothing else
    assert sorted(t.numel() for t in saved) == [n] + [n * d] * 4


@pytest.mark.parametrize("causal", [False, True])
def test_the_pytorch_blocks_backward_gives_the_same_gradients(causal):
    q, k, v, do = inputs(2, 1, 70, 100, 32, seed=1)
    ours = value_and_grads(flash_attention, q, k, v, do, is_causal=causal)
    blocks = value_and_grads(chunked_attention, q, k, v, do, is_causal=causal, block_size=32,
                             query_block_size=32)
    values, grads = largest_gaps(ours, blocks)
    assert values < 2e-5 and grads < 2e-4, (values, grads)


@pytest.mark.parametrize("kernel", ["forward", "dkdv", "dq"])
def test_the_gpu_block_sizes_give_the_same_numbers(kernel):
    "A GPU's tiles (128 x 64 forward, 32 x 128 for dK and dV, 128 x 32 for dQ) run here by the interpreter."
    m, n = {"forward": (128, 64), "dkdv": (32, 128), "dq": (128, 32)}[kernel]
    q, k, v, do = inputs(1, 1, 200, 150, 64, seed=2)
    for causal in (False, True):
        out, lse = _flash_forward(q, k, v, causal, 0.125, blocks=(m, n))
        grads = _flash_backward(do, q, k, v, out, lse, causal, 0.125, blocks=(m, n))
        ref = value_and_grads(F.scaled_dot_product_attention, q, k, v, do, is_causal=causal)
        values, gaps = largest_gaps((out, grads), ref)
        assert values < 2e-5 and gaps < 2e-4, (causal, values, gaps)


def test_constants_pad_the_head_dim_to_a_power_of_two():
    assert [_blocks("forward", d, torch.float32)["BLOCK_D"] for d in (16, 17, 48, 64, 80, 128)] == \
        [16, 32, 64, 64, 128, 128]
    assert _blocks("dq", 64, torch.float32)["PRECISION"] == "ieee"


def test_inputs_of_any_layout_and_partial_gradients():
    q, k, v, do = inputs(1, 2, 40, 50, 16)
    # (B, N, H, d) tensors viewed as (B, H, N, d): not contiguous
    qt, kt, vt = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (q, k, v))
    assert not qt.is_contiguous()
    qt.requires_grad_()
    out = flash_attention(qt, kt, vt)
    (dq,) = torch.autograd.grad(out, qt, do)
    ref = value_and_grads(F.scaled_dot_product_attention, q, k, v, do)
    assert (out - ref[0]).abs().max() < 2e-5 and (dq - ref[1][0]).abs().max() < 2e-4


ERRORS = [  # (q, k, v) shapes or dtypes, is_causal, the argument the message names
    (((1, 40, 16), (1, 1, 40, 16), (1, 1, 40, 16)), False, "q must be 4-D"),
    (((1, 1, 40, 16), (1, 1, 40, 16), (1, 40, 16)), False, "v must be 4-D"),
    (((1, 2, 40, 16), (1, 1, 40, 16), (1, 1, 40, 16)), False, r"k and v must be .*q.shape = \(1, 2, 40, 16\)"),
    (((2, 1, 40, 16), (1, 1, 40, 16), (1, 1, 40, 16)), False, "same batch, heads and head dim"),
    (((1, 1, 40, 16), (1, 1, 40, 32), (1, 1, 40, 32)), False, "same batch, heads and head dim"),
    (((1, 1, 40, 16), (1, 1, 40, 16), (1, 1, 30, 16)), False, r"v.shape = \(1, 1, 30, 16\)"),
    (((1, 1, 40, 8), (1, 1, 40, 8), (1, 1, 40, 8)), False, "head dim d must be 16 to 128"),
    (((1, 1, 40, 256), (1, 1, 40, 256), (1, 1, 40, 256)), False, "head dim d must be 16 to 128"),
    (((1, 1, 0, 16), (1, 1, 40, 16), (1, 1, 40, 16)), False, "must not be empty"),
]


@pytest.mark.parametrize("shapes,causal,message", ERRORS)
def test_unsupported_shapes_raise_value_error_naming_the_argument(shapes, causal, message):
    q, k, v = (torch.randn(s, device=DEVICE) for s in shapes)
    with pytest.raises(ValueError, match=message):
        flash_attention(q, k, v, is_causal=causal)


def test_unsupported_dtypes_and_masks_raise():
    q = torch.randn(1, 1, 40, 16, device=DEVICE)
    with pytest.raises(ValueError, match="float32, float16 or bfloat16, got torch.float64"):
        flash_attention(q.double(), q.double(), q.double())
    with pytest.raises(ValueError, match="share one dtype"):
        flash_attention(q, q.half(), q)
    mask = torch.ones(40, 40, dtype=torch.bool, device=DEVICE)
    with pytest.raises(ValueError, match="is_causal must be a bool.*no attn_mask"):
        flash_attention(q, q, q, mask)                              # a mask passed where is_causal goes
    with pytest.raises(TypeError):
        flash_attention(q, q, q, attn_mask=mask)                     # no such argument


def test_the_module_imports_without_triton_and_says_how_to_get_it():
    code = ("import sys; sys.modules['triton'] = None\n"
            "import torch\n"
            "from attn_tutorial.flash import flash_attention\n"
            "q = torch.randn(1, 1, 8, 16)\n"
            "try:\n"
            "    flash_attention(q, q, q)\n"
            "except ImportError as err:\n"
            "    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "TRITON_INTERPRET": "1"})
    assert "pip install triton" in out.stdout, out.stdout + out.stderr
