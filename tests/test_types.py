"""The public API is visible to a type checker (issue 31, item 7): a user's script that calls the attention
function, the blocked attention, the modules' `from_torch`, `GPT.from_hf`'s model and `generate` type-checks with
mypy with no error, and a script with a real mistake does not (so the check can fail)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("mypy")

USER_SCRIPT = textwrap.dedent('''
    import torch
    from attn_tutorial.attention import scaled_dot_product_attention
    from attn_tutorial.efficient import chunked_attention
    from attn_tutorial.gpt import GPT, GPTConfig
    from attn_tutorial.modern import LlamaConfig
    from attn_tutorial.multihead import KVCache, MultiHeadAttention
    from attn_tutorial.transformer import TransformerDecoderLayer, TransformerEncoderLayer

    q = torch.randn(2, 4, 5, 8)
    out, weights = scaled_dot_product_attention(q, q, q, is_causal=True)
    blocked: torch.Tensor = chunked_attention(q, q, q, block_size=2)
    mha = MultiHeadAttention.from_torch(torch.nn.MultiheadAttention(16, 4, batch_first=True))
    x = torch.randn(2, 5, 16)
    y, w = mha(x, x, x, need_weights=False)
    projected = mha.in_projection(x, x, x)
    cache: KVCache = mha.new_cache()
    layer = TransformerEncoderLayer.from_torch(torch.nn.TransformerEncoderLayer(16, 4, batch_first=True))
    decoder = TransformerDecoderLayer.from_torch(torch.nn.TransformerDecoderLayer(16, 4, batch_first=True))
    z: torch.Tensor = layer(x)
    gpt = GPT(GPTConfig(vocab_size=50, n_layer=2))
    llama = GPT(LlamaConfig(vocab_size=50, n_layer=2, n_kv_head=2))
    tokens: torch.Tensor = gpt.generate(torch.zeros(1, 3, dtype=torch.long), 5, do_sample=True, top_k=5)
    padded = llama.generate(torch.zeros(2, 3, dtype=torch.long), 4, attention_mask=torch.ones(2, 3),
                            num_beams=2, eos_token_id=1)
    caches = gpt.new_caches()
    logits: torch.Tensor = gpt(torch.zeros(1, 3, dtype=torch.long), caches)
    copy_from_hf = GPT.from_hf  # (a transformers model would go here)
''')


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    "One mypy cache for both checks: torch's stubs are read once."
    return tmp_path_factory.mktemp("mypy_cache")


def _mypy(tmp_path, cache, script: str) -> subprocess.CompletedProcess:
    path = tmp_path / "user.py"
    path.write_text(script)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache), "--no-error-summary",
         "--hide-error-context", str(path)], capture_output=True, text=True, cwd=tmp_path)


def test_a_users_script_type_checks(tmp_path, cache):
    result = _mypy(tmp_path, cache, USER_SCRIPT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_call_is_caught(tmp_path, cache):
    n = USER_SCRIPT.count("\n")
    wrong = USER_SCRIPT + 'gpt.generate(torch.zeros(1, 3, dtype=torch.long), "five")\nmha.from_hf(3)\n'
    result = _mypy(tmp_path, cache, wrong)
    assert result.returncode == 1
    # the number of new tokens is an int; a MultiHeadAttention has no from_hf (nn.Module's __getattr__ types
    # an unknown attribute as a Tensor or Module, not callable)
    assert f'user.py:{n + 1}: error: Argument 2 has incompatible type "str"; expected "int"' in result.stdout
    assert f'user.py:{n + 2}: error: "Tensor" not callable' in result.stdout
