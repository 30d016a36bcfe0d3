"""attn_tutorial.speech: the recordings loader (clear error when missing), seeded synthesis and disjoint splits,
the mel filterbank and log-mel features, the listener's lengths, greedy decoding of a tiny trained model, and the
word error rate against hand-computed cases."""
from __future__ import annotations

import math
import shutil

import pytest
import torch

from attn_tutorial import speech
from attn_tutorial.data import EOS, Vocab
from attn_tutorial.speech import (
    SAMPLE_RATE, ListenAttendSpell, Listener, attention_in_span, change_speed, collate_speech,
    digit_strings, edit_distance, featurize, load_recordings, log_mel, make_splits, mel_centres, mel_filterbank,
    speech_batches, stack_frames, state_times, synthesize, transcribe, trim_silence, word_error_rate, word_targets)
from attn_tutorial.search import greedy
from attn_tutorial.train import fit, seed_everything, seq2seq_loss


@pytest.fixture(scope="module")
def recordings():
    return load_recordings()


def test_recordings_are_the_eleven_words(recordings):
    assert list(recordings) == ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh"]
    assert all(x.dtype == torch.float32 and x.dim() == 1 and 4000 < len(x) < 8000 for x in recordings.values())
    again = load_recordings()
    assert all(torch.equal(recordings[w], again[w]) for w in recordings)


def test_missing_files_say_how_to_regenerate(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"python data/speech_digits/extract\.py"):
        load_recordings(tmp_path)
    shutil.copy(speech.SPEECH_DIR / "transcripts.tsv", tmp_path)          # the index without its wav files
    with pytest.raises(FileNotFoundError, match=r"0\.wav not found: regenerate it with"):
        load_recordings(tmp_path)
    monkeypatch.setattr(speech, "SPEECH_DIR", tmp_path / "nowhere")        # the default path, moved away
    with pytest.raises(FileNotFoundError, match="asterisk-core-sounds-en-wav"):
        load_recordings()


def test_splits_are_deterministic_and_disjoint(recordings):
    train, test = make_splits(recordings, 40, 15, seed=3)
    train2, test2 = make_splits(recordings, 40, 15, seed=3)
    for a, b in zip(train + test, train2 + test2):
        assert a.words == b.words and a.spans == b.spans and torch.equal(a.samples, b.samples)
    strings = [tuple(u.words) for u in train], [tuple(u.words) for u in test]
    assert len(set(strings[0])) == 40 and len(set(strings[1])) == 15 and not set(strings[0]) & set(strings[1])
    assert all(3 <= len(u.words) <= 7 and len(u.spans) == len(u.words) for u in train + test)
    other, _ = make_splits(recordings, 40, 15, seed=4)
    assert [u.words for u in other] != [u.words for u in train]


def test_batches_are_deterministic_and_cover_every_utterance():
    feats = [torch.full((n, 3), float(n)) for n in (5, 9, 2, 7, 4, 6, 8)]
    targets = [torch.tensor([3 + i % 4, EOS]) for i in range(7)]

    def two_passes():
        batches = speech_batches(feats, targets, 3, shuffle=True, seed=1)
        return [(b.src, b.src_len) for _ in range(2) for b in batches]

    runs = [two_passes(), two_passes()]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(*runs))
    first_pass = sorted(n for _, lens in runs[0][:3] for n in lens.tolist())
    assert first_pass == [2, 4, 5, 6, 7, 8, 9]                           # each utterance once per pass
    bucketed = list(speech_batches(feats, targets, 3, bucket=True))
    assert [b.src_len.tolist() for b in bucketed] == [[2, 4, 5], [6, 7, 8], [9]]
    b = bucketed[0]
    assert b.src.shape == (3, 5, 3) and (b.src[0, 2:] == 0).all() and b.tgt_in[:, 0].tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="as many targets as features"):
        collate_speech(feats[:2], targets[:1])


def test_digit_strings_exclude_and_errors():
    words = ["a", "b"]
    all_pairs = {(x, y) for x in words for y in words}
    got = digit_strings(words, 2, torch.Generator().manual_seed(0), 2, 2, exclude={("a", "a"), ("b", "b")})
    assert sorted(got) == [("a", "b"), ("b", "a")] and set(got) <= all_pairs
    with pytest.raises(ValueError, match="min_words <= max_words"):
        digit_strings(words, 1, torch.Generator(), 3, 2)
    with pytest.raises(ValueError, match="only 2 strings"):                # would otherwise draw forever
        digit_strings(words, 3, torch.Generator(), 2, 2, exclude={("a", "a"), ("b", "b")})


def test_synthesis_spans_and_speed(recordings):
    u = synthesize(["one", "two"], recordings, torch.Generator().manual_seed(1), speed=(1.0, 1.0),
                   gain_db=(0.0, 0.0), snr_db=(200.0, 200.0))
    lengths = [round((b - a) * SAMPLE_RATE) for a, b in u.spans]
    assert lengths == [len(trim_silence(recordings[w])) for w in ("one", "two")]
    a, b = u.spans[0]
    torch.testing.assert_close(u.samples[round(a * SAMPLE_RATE): round(b * SAMPLE_RATE)],
                               trim_silence(recordings["one"]), rtol=0, atol=1e-6)
    tone = torch.sin(2 * math.pi * 500 * torch.arange(8000) / SAMPLE_RATE)
    slow = change_speed(tone, 0.8)
    assert len(slow) == 10000 and torch.fft.rfft(slow).abs().argmax().item() * SAMPLE_RATE / 10000 == 400
    with pytest.raises(ValueError, match="factor > 0"):
        change_speed(tone, 0.0)


def test_mel_filterbank_and_tones():
    fb = mel_filterbank(40, 256)
    edges = mel_centres(40)
    assert fb.shape == (40, 129) and (fb >= 0).all() and (fb <= 1).all() and (fb.sum(1) > 0).all()
    assert edges[0] == 0 and abs(edges[-1].item() - 4000) < 1e-6
    peaks = fb.argmax(1)
    assert (peaks[1:] >= peaks[:-1]).all()
    # a filter's weights outside its two neighbours' centres are zero
    freqs = torch.linspace(0, 4000, 129, dtype=torch.float64)
    for j in (0, 17, 39):
        outside = (freqs < edges[j]) | (freqs > edges[j + 2])
        assert (fb[j][outside] == 0).all()
    for hz in (300.0, 1500.0, 3500.0):
        lm = log_mel(torch.sin(2 * math.pi * hz * torch.arange(2000) / SAMPLE_RATE))
        assert lm.shape == (1 + 2000 // 80, 40)
        assert (lm[2:-2].argmax(1) == (edges[1:-1] - hz).abs().argmin()).all()
    with pytest.raises(ValueError, match="f_min < f_max"):
        mel_filterbank(40, 256, f_min=5000.0)
    with pytest.raises(ValueError, match=r"one signal \(N,\)"):
        log_mel(torch.zeros(2, 100))


def test_stack_frames_and_features(recordings):
    x = torch.arange(7 * 2, dtype=torch.float32).view(7, 2)
    assert stack_frames(x, 3).tolist() == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    with pytest.raises(ValueError, match=r"S >= k >= 1"):
        stack_frames(x, 8)
    u = synthesize(["nine", "oh", "five"], recordings, torch.Generator().manual_seed(0))
    f = featurize(u, 3)
    assert f.shape == ((1 + len(u.samples) // 80) // 3, 120) and torch.isfinite(f).all()


def test_listener_lengths_and_errors():
    enc = Listener(12, 8, 10, stride=2, pyramid=2)          # conv: L // 2 states, then halved twice
    out, lengths, state = enc(torch.randn(3, 21, 12), torch.tensor([21, 9, 8]))
    assert out.shape == (3, 2, 10) and lengths.tolist() == [2, 1, 1] and state.shape == (3, 10)
    assert enc.output_lengths(torch.tensor([21, 9, 8])).tolist() == [2, 1, 1]
    assert Listener(12, 8, 10).output_lengths(torch.tensor([4, 7, 8, 100])).tolist() == [1, 1, 2, 25]
    with pytest.raises(ValueError, match="leave no encoder state"):
        enc(torch.randn(3, 21, 12), torch.tensor([21, 3, 4]))
    with pytest.raises(ValueError, match=r"x must be \(B, S, F\)"):
        enc(torch.randn(21, 12), torch.tensor([21]))
    assert state_times(3, 12).tolist() == pytest.approx([0.055, 0.175, 0.295])


def test_padding_changes_nothing():
    torch.manual_seed(0)
    model = ListenAttendSpell(12, 9, enc_hidden=8, hidden=8, emb_dim=4).double().eval()
    x, tgt = torch.randn(2, 30, 12, dtype=torch.float64), torch.tensor([[1, 4, 5], [1, 6, 7]])
    x[1, 17:] = 0                                             # the second utterance is 17 frames, then padding
    logits, w = model(x, torch.tensor([30, 17]), tgt)
    alone, alone_w = model(x[1:, :17], torch.tensor([17]), tgt[1:])
    torch.testing.assert_close(logits[1], alone[0], rtol=0, atol=1e-12)
    assert (w[1, :, 4:] == 0).all() and w.shape == (2, 3, 7)
    torch.testing.assert_close(w[1, :, :4], alone_w[0], rtol=0, atol=1e-12)


def test_attention_in_span_by_hand():
    times = torch.tensor([0.1, 0.3, 0.5, 0.7])
    w = torch.tensor([[0.5, 0.25, 0.25, 0.0], [0.0, 0.1, 0.2, 0.7]])
    share = attention_in_span(w, [(0.0, 0.35), (0.6, 1.0)], times)
    torch.testing.assert_close(share, torch.tensor([0.75, 0.7]))
    with pytest.raises(ValueError, match=r"weights must be \(L, S'\) = \(1, 4\)"):
        attention_in_span(w, [(0.0, 1.0)], times)


def test_word_error_rate_by_hand():
    ref = "one two three".split()
    assert edit_distance(ref, "one five three".split()) == 1            # substitution
    assert edit_distance(ref, "one two two three".split()) == 1         # insertion
    assert edit_distance(ref, "one three".split()) == 1                 # deletion
    assert edit_distance(ref, []) == 3 and edit_distance([], ["oh"]) == 1 and edit_distance([], []) == 0
    assert edit_distance("a b c d".split(), "b c d e".split()) == 2
    assert edit_distance("a b".split(), "b a".split()) == 2             # a swap is two edits, not one
    assert word_error_rate([ref, ["oh"]], [["one", "three"], ["oh", "oh", "oh"]]) == 3 / 4
    assert word_error_rate([[], ref], [["oh"], ref]) == 1 / 3           # an empty reference counts its insertions
    with pytest.raises(ValueError, match="no words"):
        word_error_rate([[]], [["oh"]])
    with pytest.raises(ValueError, match="one hypothesis per reference"):
        word_error_rate([ref], [])


def test_tiny_trained_model_decodes_valid_tokens(recordings):
    torch.set_num_threads(2)
    train, test = make_splits(recordings, 48, 4, seed=0)
    vocab = Vocab(list(recordings))
    feats, targets = [featurize(u, 6) for u in train], word_targets(train, vocab)
    assert collate_speech(feats[:2], targets[:2]).src.shape[2] == 240
    seed_everything(0)
    model = ListenAttendSpell(240, len(vocab), enc_hidden=16, hidden=16, emb_dim=8, attention=True)
    hist = fit(model, seq2seq_loss, speech_batches(feats, targets, 16, shuffle=True), 30, lr=1e-2, device="cpu",
               progress=False)
    assert hist.losses[-1] < hist.losses[0]
    model.eval()
    batch = collate_speech([featurize(u, 6) for u in test], word_targets(test, vocab))
    tokens, _, weights = greedy(model, batch.src, batch.src_len, 8, eos=None, need_weights=True)
    assert tokens.shape == (4, 8) and ((tokens >= EOS) & (tokens < len(vocab))).all()   # no <pad>, no <bos>
    assert weights.shape == (4, 8, model.listener.output_lengths(batch.src_len).max())
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 8))
    words, _ = transcribe(model, batch.src, batch.src_len, vocab, max_words=7)
    assert len(words) == 4 and all(len(w) <= 8 and set(w) <= set(recordings) for w in words)
    assert 0 <= word_error_rate([u.words for u in test], words)
