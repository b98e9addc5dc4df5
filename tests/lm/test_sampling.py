import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quartet.core.errors import QuartetError
from quartet.lm.sampling import (
    ConcatChunkSampler,
    PackSampler,
    VSLSampler,
    best_fit_decreasing,
    curriculum_odds,
)
from quartet.lm.store import BucketArray, Stream


def _buckets(sizes: dict[int, int]) -> dict[int, BucketArray]:
    """Bucket k holds sequences whose tokens encode (k, sequence index) so batches can be traced back."""
    out = {}
    for k, n in sizes.items():
        seq_id = np.repeat(np.arange(n, dtype=np.int64), 1 << k)
        out[k] = BucketArray(k, [k * 1_000_000 + seq_id])
    return out


sizes_st = st.dictionaries(st.integers(2, 5), st.integers(0, 60), min_size=1, max_size=4).filter(
    lambda d: any(n * (1 << k) >= 32 for k, n in d.items()))


@settings(max_examples=40, deadline=None)
@given(sizes_st, st.sampled_from(["uniform", "grow_linear", "grow_p2", "grow_p100"]), st.integers(1, 4),
       st.integers(0, 1000))
def test_vsl_epoch_properties(sizes: dict[int, int], cur: str, cycles: int, seed: int) -> None:
    b = 64
    s = VSLSampler(_buckets(sizes), b, cur, cycles, seed)
    steps = s.steps_per_epoch()
    assert steps == sum(s.bucket_steps().values())
    seen: dict[int, list[int]] = {}
    for _ in range(steps):
        batch = s.next()
        assert batch.tokens.size == b  # every step holds the same number of tokens
        L = batch.seq_len
        k = L.bit_length() - 1
        assert L == 1 << k and k in sizes  # a power-of-two length of an existing bucket
        ids = batch.tokens - k * 1_000_000
        assert np.all(ids == ids[:, :1])  # every sequence is one stored piece
        seen.setdefault(k, []).extend(ids[:, 0].tolist())
    for k, ids in seen.items():
        assert len(ids) == len(set(ids))  # each sequence at most once per epoch
        assert len(ids) == (sizes[k] // (b >> k)) * (b >> k)  # all but the < one-batch remainder
    assert s.epoch == 0 and s.step == steps


def test_vsl_same_bucket_on_every_rank_disjoint_sequences_and_resume() -> None:
    sizes = {3: 40, 4: 30, 5: 20}
    ranks = [VSLSampler(_buckets(sizes), 64, "grow_p2", 2, seed=3, world_size=2, rank=r) for r in range(2)]
    single = VSLSampler(_buckets(sizes), 64, "grow_p2", 2, seed=3)
    for _ in range(single.steps_per_epoch()):
        a, b, full = ranks[0].next(), ranks[1].next(), single.next()
        assert a.seq_len == b.seq_len == full.seq_len
        assert np.array_equal(np.concatenate([a.tokens, b.tokens]), full.tokens)
    # resume mid-epoch from the state dict
    s1 = VSLSampler(_buckets(sizes), 64, "uniform", 1, seed=5)
    for _ in range(3):
        s1.next()
    state = s1.state_dict()
    s2 = VSLSampler(_buckets(sizes), 64, "uniform", 1, seed=5)
    s2.load_state_dict(state)
    for _ in range(10):  # crosses into the next epoch too
        assert np.array_equal(s1.next().tokens, s2.next().tokens)
    with pytest.raises(QuartetError, match="same settings"):
        VSLSampler(_buckets(sizes), 64, "uniform", 1, seed=6).load_state_dict(state)


def test_vsl_deterministic_and_seed_dependent() -> None:
    sizes = {3: 80, 4: 40, 5: 20}

    def order(seed: int) -> list[int]:
        s = VSLSampler(_buckets(sizes), 64, "uniform", 1, seed)
        return [s.next().seq_len for _ in range(s.steps_per_epoch())]

    assert order(1) == order(1)
    assert order(1) != order(2)


def test_grow_curriculum_moves_from_short_to_long_within_each_cycle() -> None:
    sizes = {3: 800, 4: 400, 5: 200, 6: 100}
    s = VSLSampler(_buckets(sizes), 64, "grow_p100", 2, seed=0)
    lens = np.array([s.next().seq_len for _ in range(s.steps_per_epoch())])
    half = len(lens) // 2
    for part in (lens[:half], lens[half:]):
        q = len(part) // 4
        assert part[:q].mean() < part[-q:].mean()
    assert lens[0] == 8 and lens[half - 1] == 64  # P100 is nearly a strict short-to-long order


def test_curriculum_odds_and_errors() -> None:
    assert curriculum_odds("grow_p2", [8, 9, 10]) == {8: 4.0, 9: 2.0, 10: 1.0}
    assert curriculum_odds("grow_linear", [8, 9, 10]) == {8: 3.0, 9: 2.0, 10: 1.0}
    assert curriculum_odds("custom:1,0,5", [8, 9, 10]) == {8: 1.0, 9: 0.0, 10: 5.0}
    with pytest.raises(QuartetError, match="unknown curriculum"):
        curriculum_odds("grow", [8])
    with pytest.raises(QuartetError, match="multiple"):
        VSLSampler(_buckets({3: 10, 6: 4}), 96, "uniform")


def _stream(lens: list[int]) -> Stream:
    lens_a = np.array(lens, dtype=np.int64)
    return Stream([np.arange(int(lens_a.sum()), dtype=np.int64)], [lens_a])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=40), st.booleans())
def test_concat_chunk_sees_each_token_once_per_epoch(lens: list[int], dm: bool) -> None:
    stream = _stream(lens)
    if len(stream) < 32:
        return
    s = ConcatChunkSampler(stream, 8, 32, doc_mask=dm, seed=1)
    toks = []
    for _ in range(s.steps_per_epoch()):
        b = s.next()
        assert b.tokens.shape == (4, 8)
        toks.append(b.tokens.ravel())
        if dm:
            doc = np.searchsorted(stream.doc_starts, b.tokens, side="right") - 1
            assert np.array_equal(doc, b.segments)
    t = np.concatenate(toks)
    assert np.unique(t).size == t.size == (len(stream) // 32) * 32


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=60))
def test_best_fit_decreasing_places_every_item_once_within_capacity(sizes: list[int]) -> None:
    bins = best_fit_decreasing(np.array(sizes), 40)
    flat = sorted(i for b in bins for i in b)
    assert flat == list(range(len(sizes)))
    assert all(sum(sizes[i] for i in b) <= 40 for b in bins)
    assert len(bins) <= 2 * -(-sum(sizes) // 40) + 1  # BFD uses at most ~ 11/9 OPT + 1 bins


def test_pack_sampler_segments_padding_and_tokens() -> None:
    stream = _stream([5, 20, 3, 9, 14, 7, 30, 2])
    s = PackSampler(stream, 16, 32, pad_id=-1, seed=0)
    got = []
    for _ in range(s.steps_per_epoch()):
        b = s.next()
        assert b.tokens.shape == (2, 16)
        real = b.tokens[b.loss_mask]
        got.append(real)
        for row, seg in zip(b.tokens, b.segments, strict=True):
            for sid in np.unique(seg):  # every segment is one document's contiguous chunk (or padding)
                part = row[seg == sid]
                if part[0] >= 0:
                    assert np.all(np.diff(part) == 1)
    allt = np.concatenate(got)
    assert np.unique(allt).size == allt.size
    assert 0 <= s.padding_fraction() < 0.5
