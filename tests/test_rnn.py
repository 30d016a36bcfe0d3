"""attn_tutorial.rnn: shapes, padding changes nothing for the real positions, weights over real keys sum to 1."""
import pytest
import torch

from attn_tutorial.data import PAD
from attn_tutorial.measure import count_parameters
from attn_tutorial.rnn import Encoder, Seq2Seq
from attn_tutorial.search import greedy

F64 = torch.float64


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("attention", [False, True])
def test_shapes_and_padding_invariance(cell, attention):
    torch.manual_seed(0)
    m = Seq2Seq(11, emb_dim=6, hidden=10, cell=cell, attention=attention).double().eval()
    src = torch.tensor([[3, 4, 5, 6, 7], [8, 9, PAD, PAD, PAD], [4, 4, 4, PAD, PAD]])
    src_len = torch.tensor([5, 2, 3])
    tgt_in = torch.tensor([[1, 3, 4, 5], [1, 8, 9, 9], [1, 4, 4, 4]])
    logits, w = m(src, src_len, tgt_in)
    assert logits.shape == (3, 4, 11)
    if attention:
        assert w.shape == (3, 4, 5)
        assert (w[1, :, 2:] == 0).all() and (w[2, :, 3:] == 0).all()
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, dtype=F64), rtol=0, atol=1e-12)
    else:
        assert w is None
    for i in range(3):          # each sequence on its own, unpadded, gives the same result (float64 round-off)
        n = src_len[i]
        alone, w_alone = m(src[i:i + 1, :n], src_len[i:i + 1], tgt_in[i:i + 1])
        torch.testing.assert_close(logits[i], alone[0], rtol=0, atol=1e-12)
        if attention:
            torch.testing.assert_close(w[i, :, :n], w_alone[0], rtol=0, atol=1e-12)


def test_padding_values_do_not_matter():
    torch.manual_seed(1)
    m = Seq2Seq(11, 6, 10, attention=True).double().eval()
    src = torch.tensor([[3, 4, PAD, PAD]])
    junk = torch.tensor([[3, 4, 9, 10]])                       # garbage where the padding was
    tgt = torch.tensor([[1, 3]])
    a, wa = m(src, torch.tensor([2]), tgt)
    b, wb = m(junk, torch.tensor([2]), tgt)
    assert torch.equal(a, b) and torch.equal(wa, wb)


def test_encoder_outputs_are_zero_at_padding():
    enc = Encoder(11, 4, 6, "lstm")
    out, (h, c) = enc(torch.tensor([[3, 4, 5], [6, PAD, PAD]]), torch.tensor([3, 1]))
    assert out.shape == (2, 3, 6) and h.shape == c.shape == (2, 6)
    assert (out[1, 1:] == 0).all()
    torch.testing.assert_close(out[1, 0], h[1])                # the final state is the last real position's


def test_decoder_attention_matches_its_formula():
    "One decoder step: e_j = v·tanh(W_q s + W_k h_j + b), weights softmax(e) over the real keys, context Σ w_j h_j."
    torch.manual_seed(2)
    m = Seq2Seq(11, 4, 5, attention=True).double()
    src, src_len = torch.tensor([[3, 4, 5], [6, 7, PAD]]), torch.tensor([3, 2])
    annotations, keys, mask, state = m.encode(src, src_len)
    _, _, w = m.decoder.step(torch.tensor([1, 1]), state, annotations, keys, mask)
    att = m.decoder.attention
    for b in range(2):
        n = int(src_len[b])
        e = torch.stack([att.v.weight[0] @ torch.tanh(att.w_q.weight @ state[b] + att.w_k.weight @ annotations[b, j]
                                                      + att.w_k.bias) for j in range(n)])
        torch.testing.assert_close(w[b, :n], torch.softmax(e, 0), rtol=0, atol=1e-12)
        assert (w[b, n:] == 0).all()


def test_greedy_matches_teacher_forcing_on_its_own_outputs():
    torch.manual_seed(3)
    m = Seq2Seq(11, 6, 10, attention=True).double().eval()
    src, src_len = torch.tensor([[3, 4, 5]]), torch.tensor([3])
    tokens, _, w = greedy(m, src, src_len, 4, eos=None, need_weights=True)
    logits, w_tf = m(src, src_len, torch.cat([torch.tensor([[1]]), tokens[:, :-1]], 1))
    assert torch.equal(logits.index_fill(-1, torch.tensor([0, 1]), -torch.inf).argmax(-1), tokens)
    torch.testing.assert_close(w, w_tf, rtol=0, atol=1e-12)


def test_attention_adds_parameters():
    assert count_parameters(Seq2Seq(13, 32, 64, attention=True)) > count_parameters(Seq2Seq(13, 32, 64))


@pytest.mark.parametrize("call, message", [
    (lambda: Seq2Seq(13, cell="transformer"), "cell must be one of"),
    (lambda: Seq2Seq(0), "sizes must be >= 1"),
    (lambda: Seq2Seq(13)(torch.ones(2, 3, dtype=torch.long) * 3, torch.tensor([3, 3]),
                         torch.ones(3, 2, dtype=torch.long)), "disagree on the batch size"),
    (lambda: Seq2Seq(13)(torch.ones(2, 3, dtype=torch.long) * 3, torch.tensor([3, 0]),
                         torch.ones(2, 2, dtype=torch.long)), r"src_len must lie in \[1, 3\]"),
    (lambda: Seq2Seq(13)(torch.ones(2, 3, dtype=torch.long) * 3, torch.tensor([3]),
                         torch.ones(2, 2, dtype=torch.long)), "disagree on the batch size"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
