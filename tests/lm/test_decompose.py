import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quartet.lm.decompose import decompose_lengths, gather_buckets, piece_counts, token_label_gather
from quartet.lm.stats import avg_context, cc_segments, pack_segments

lengths_st = st.lists(st.integers(0, 3000), min_size=0, max_size=40)
range_st = st.tuples(st.integers(0, 6), st.integers(0, 5)).map(lambda t: (t[0], t[0] + t[1]))


def _check(lengths: list[int], kmin: int, kmax: int, variant: str) -> None:
    lens = np.array(lengths, dtype=np.int64)
    p = decompose_lengths(lens, kmin, kmax, variant, np.random.default_rng(0))
    starts = np.concatenate([[0], np.cumsum(lens)])
    plen = p.lengths
    # lengths are powers of two in range
    assert np.all((p.log2 >= kmin) & (p.log2 <= kmax))
    # token accounting: pieces + dropped = document length, per document
    used = np.bincount(p.doc, weights=plen, minlength=lens.size) if lens.size else np.zeros(0)
    assert np.array_equal(used.astype(np.int64) + p.dropped, lens)
    assert np.all(p.dropped >= 0)
    for d in range(lens.size):
        sel = p.doc == d
        off, ln = p.offset[sel], plen[sel]
        # every piece lies inside its document; pieces are adjacent and disjoint, from the document start
        assert np.all(off >= starts[d]) and np.all(off + ln <= starts[d + 1])
        if off.size:
            assert off[0] == starts[d]
            assert np.array_equal(off[1:], off[:-1] + ln[:-1])
        if variant == "binary":
            # exact binary decomposition: the drop is the part below 2^min, pieces are non-increasing
            assert p.dropped[d] == (lens[d] if lens[d] < (1 << kmin) else lens[d] % (1 << kmin))
            assert np.all(np.diff(ln) <= 0)


@settings(max_examples=60, deadline=None)
@given(lengths_st, range_st)
def test_binary_decomposition_properties(lengths: list[int], kr: tuple[int, int]) -> None:
    _check(lengths, kr[0], kr[1], "binary")


@settings(max_examples=40, deadline=None)
@given(lengths_st, range_st)
def test_random_decomposition_properties(lengths: list[int], kr: tuple[int, int]) -> None:
    _check(lengths, kr[0], kr[1], "random")


@settings(max_examples=30, deadline=None)
@given(lengths_st, range_st)
def test_gather_matches_label_gather_and_document_tokens(lengths: list[int], kr: tuple[int, int]) -> None:
    kmin, kmax = kr
    lens = np.array(lengths, dtype=np.int64)
    tokens = np.arange(int(lens.sum()), dtype=np.uint32)  # token value = its stream position
    p = decompose_lengths(lens, kmin, kmax)
    a = gather_buckets(tokens, p, kmin, kmax)
    b = token_label_gather(tokens, p, kmin, kmax)
    doc_of = np.repeat(np.arange(lens.size), lens)
    for k in range(kmin, kmax + 1):
        assert np.array_equal(a[k], b[k])
        seqs = a[k].reshape(-1, 1 << k)
        # every sequence is a contiguous run of one document's tokens
        assert np.all(np.diff(seqs.astype(np.int64), axis=1) == 1)
        if seqs.size:
            assert np.all(doc_of[seqs[:, 0]] == doc_of[seqs[:, -1]])
    # each token lands in at most one bucket
    allt = np.concatenate([a[k] for k in a]) if a else np.zeros(0)
    assert np.unique(allt).size == allt.size == int(lens.sum() - p.dropped.sum())


def test_known_example_and_counts() -> None:
    p = decompose_lengths(np.array([0, 5, 33, 1100, 31, 64]), 5, 10)
    assert p.doc.tolist() == [2, 3, 3, 5]
    assert p.offset.tolist() == [5, 38, 1062, 1169]
    assert p.lengths.tolist() == [32, 1024, 64, 64]
    assert p.dropped.tolist() == [0, 5, 1, 12, 31, 0]
    c = piece_counts(np.array([3000]), 8, 10)
    assert c.tolist() == [[2, 1, 1]]  # 3000 = 2*1024 + 512 + 256 + 184 dropped


def test_random_variant_spreads_long_documents() -> None:
    p = decompose_lengths(np.array([1 << 16] * 20), 5, 10, "random", np.random.default_rng(1))
    tok = np.bincount(p.log2.astype(int), weights=p.lengths, minlength=11)[5:]
    share = tok / tok.sum()
    assert share.min() > 0.08  # ~1/6 each in expectation; the binary variant puts 100% in 2^10


def test_bad_range_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid"):
        decompose_lengths(np.array([10]), 6, 5)
    with pytest.raises(ValueError, match="variant"):
        decompose_lengths(np.array([10]), 1, 3, "nope")


def test_stats_context_lengths() -> None:
    assert avg_context(np.array([4])) == pytest.approx(6 / 4)
    seg = cc_segments(np.array([3, 5, 4]), 4)  # stream 12 tokens -> chunks [3|1],[4],[4]
    assert seg.tolist() == [3, 1, 4, 4]
    assert sorted(pack_segments(np.array([9, 2]), 4).tolist()) == [1, 2, 4, 4]
