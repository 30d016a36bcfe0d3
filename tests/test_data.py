"""attn_tutorial.data: the tasks produce what they claim, batches pad correctly, bad arguments raise."""
import pytest
import torch

from attn_tutorial.data import BOS, PAD, SPECIALS, SeqPairs, Vocab, collate, copy_task, pad, recall_task


def test_copy_and_reverse_targets_and_lengths():
    data = copy_task(300, 4, 17, n_symbols=6, seed=3)
    lens = [len(s) for s in data.src]
    assert min(lens) == 4 and max(lens) == 17 and len(data) == 300
    assert all(torch.equal(s, t) for s, t in zip(data.src, data.tgt))
    assert all(((s >= len(SPECIALS)) & (s < len(SPECIALS) + 6)).all() for s in data.src)  # symbols only
    rev = copy_task(50, 2, 9, reverse=True, seed=3)
    assert all(torch.equal(s.flip(0), t) for s, t in zip(rev.src, rev.tgt))
    assert len(data.vocab) == 9


@pytest.mark.parametrize("length, k", [(10, 0), (10, 9), (50, 23)])
def test_recall_answer_is_k_steps_back(length, k):
    data = recall_task(100, length, k, seed=k)
    for s, t in zip(data.src, data.tgt):
        assert len(s) == length and t.shape == (1,)
        assert t.item() == s[length - 1 - k].item()


def test_seeded_and_seed_sensitive():
    a, b, c = copy_task(20, 5, 9, seed=1), copy_task(20, 5, 9, seed=1), copy_task(20, 5, 9, seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a.src, b.src))
    assert not all(len(x) == len(y) and torch.equal(x, y) for x, y in zip(a.src, c.src))


def test_collate_pads_and_shifts():
    b = collate([torch.tensor([3, 4, 5]), torch.tensor([6])], [torch.tensor([7, 8]), torch.tensor([9, 3, 4])])
    assert b.src.tolist() == [[3, 4, 5], [6, PAD, PAD]] and b.src_len.tolist() == [3, 1]
    assert b.tgt_out.tolist() == [[7, 8, PAD], [9, 3, 4]] and b.tgt_len.tolist() == [2, 3]
    assert b.tgt_in.tolist() == [[BOS, 7, PAD], [BOS, 9, 3]]


def test_batches_cover_every_example_once_per_epoch_and_reshuffle():
    data = copy_task(130, 3, 30, seed=0)
    it = data.batches(32, shuffle=True, bucket=True, seed=5)
    assert len(it) == 5
    epoch1, epoch2 = list(it), list(it)
    for epoch in (epoch1, epoch2):
        seen = sorted(tuple(row[:n].tolist()) for b in epoch for row, n in zip(b.src, b.src_len))
        assert seen == sorted(tuple(s.tolist()) for s in data.src)
    assert [b.src.shape for b in epoch1] != [b.src.shape for b in epoch2]      # a new shuffle each epoch
    again = list(data.batches(32, shuffle=True, bucket=True, seed=5))
    assert all(torch.equal(x.src, y.src) for x, y in zip(epoch1, again))       # same seed, same batches


def test_vocab():
    v = Vocab(["x", "y"])
    assert v.itos == list(SPECIALS) + ["x", "y"] and v.decode(v.encode(["y", "x"])) == ["y", "x"]


@pytest.mark.parametrize("call, message", [
    (lambda: copy_task(0, 3), "number of examples"),
    (lambda: copy_task(5, -1), "min_len"),
    (lambda: copy_task(5, 6, 4), "min_len <= max_len"),
    (lambda: copy_task(5, 3, n_symbols=0), "empty vocabulary"),
    (lambda: recall_task(5, 10, 10), "k must satisfy"),
    (lambda: recall_task(5, 10, -1), "k must satisfy"),
    (lambda: Vocab([]), "at least one symbol"),
    (lambda: Vocab(["a", "a"]), "distinct"),
    (lambda: pad([]), "at least one"),
    (lambda: collate([torch.tensor([3])], []), "as many targets"),
    (lambda: SeqPairs([torch.tensor([3])], [], Vocab("a")), "as many targets"),
    (lambda: copy_task(5, 3).batches(0), "batch_size"),
])
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_lookup_task_has_exactly_one_answer_and_batches_cover_it():
    from attn_tutorial.data import lookup_task
    lk = lookup_task(500, n_pairs=6, n_keys=10, n_values=4, seed=3)
    rows = torch.arange(500)
    assert lk.keys.shape == lk.values.shape == (500, 6) and len(lk) == 500
    assert ((lk.keys[:, :, None] == lk.keys[:, None, :]).sum((1, 2)) == 6).all()   # keys distinct in a table
    assert ((lk.keys == lk.query[:, None]).sum(1) == 1).all()
    assert torch.equal(lk.keys[rows, lk.position], lk.query) and torch.equal(lk.values[rows, lk.position], lk.target)
    assert lk.keys.max() < 10 and lk.values.max() < 4
    assert torch.equal(lookup_task(20, 3, seed=1).values, lookup_task(20, 3, seed=1).values)
    assert not torch.equal(lookup_task(20, 3, seed=1).values, lookup_task(20, 3, seed=2).values)
    b = lk.batches(128, shuffle=True, seed=0)
    first, second = [x.position for x in b], [x.position for x in b]
    assert [len(x) for x in first] == [128, 128, 128, 116]
    assert sorted(torch.cat([x.query * 1000 + x.target * 10 + x.position for x in lk.batches(128, shuffle=True)]).tolist()) \
        == sorted((lk.query * 1000 + lk.target * 10 + lk.position).tolist())
    assert not torch.equal(torch.cat(first), torch.cat(second))      # a new order each epoch
    sub = lk[torch.tensor([3, 1])]
    assert torch.equal(sub.keys, lk.keys[[3, 1]]) and len(lk[:7]) == 7
    with pytest.raises(ValueError, match="n_pairs=11 distinct keys cannot be drawn from n_keys=10"):
        lookup_task(5, 11, n_keys=10)
