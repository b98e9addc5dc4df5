"""Zero-shot and retrieval metrics on a stub model whose embeddings are known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quartet.clip.evaluate import EvalData, evaluate, heldout_split, retrieval, zero_shot
from quartet.clip.models import ClipBundle


class _Tok:
    context_length = 4

    def __init__(self, vocab: list[str]):
        self.vocab = vocab

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([[self.vocab.index(t.split(":")[-1].strip())] for t in texts])


class _Stub(torch.nn.Module):
    """Image i (encoded in its first pixel) and word i both map to basis vector perm[i]."""

    def __init__(self, n: int, image_map: list[int]):
        super().__init__()
        self.n, self.image_map = n, image_map

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        idx = (x[:, 0, 0, 0] * 255).round().long()
        return torch.eye(self.n)[[self.image_map[i] for i in idx]]

    def encode_text(self, t: torch.Tensor) -> torch.Tensor:
        return torch.eye(self.n)[t[:, 0]] + 0.01


def _bundle(words: list[str], image_map: list[int]) -> ClipBundle:
    return ClipBundle("stub", _Stub(len(words), image_map), _Tok(words), 4, (0.0,) * 3, (1.0,) * 3)


def _images(n: int) -> np.ndarray:
    im = np.zeros((n, 4, 4, 3), np.uint8)
    im[:, 0, 0, 0] = np.arange(n)
    return im


def test_zero_shot_counts_top1_and_top5():
    words = [f"w{i}" for i in range(6)]
    # images 0..5 map to classes 0,1,2,3,4,0 -> with labels 0..5 the last one is wrong at top-1
    b = _bundle(words, [0, 1, 2, 3, 4, 0])
    r = zero_shot(b, _images(6), np.arange(6), words, templates=("x: {}",))
    assert r["top1"] == pytest.approx(100 * 5 / 6)
    assert r["top5"] >= r["top1"] and r["classes"] == 6 and r["n"] == 6


def test_retrieval_recall():
    words = [f"w{i}" for i in range(5)]
    b = _bundle(words, [0, 1, 2, 4, 3])  # images 3 and 4 swapped
    r = retrieval(b, _images(5), words)
    assert r["i2t_r1"] == pytest.approx(60.0) and r["t2i_r1"] == pytest.approx(60.0)
    assert r["i2t_r5"] == pytest.approx(100.0)
    flat = evaluate(b, [EvalData("ret", _images(5), captions=words)])
    assert flat["ret/i2t_r1"] == pytest.approx(60.0)


def test_heldout_split_is_disjoint_and_stable():
    tr, ho = heldout_split(1000)
    assert len(ho) == 150 and not set(tr) & set(ho) and len(tr) + len(ho) == 1000
    np.testing.assert_array_equal(ho, heldout_split(1000)[1])


def test_keyword_classes_and_labels_follow_the_stated_rule():
    from quartet.clip.evaluate import keyword_classes, keyword_labels

    train = ["red heart", "man in suit", "woman: dark skin tone", "heart with arrow", "man dancing", "flag: France",
             "flag: Chad", "woman walking"]
    classes = keyword_classes(train, k=3)
    assert classes == ["flag", "heart", "man"]  # 2 captions each; "woman" loses the alphabetical tie; modifiers skipped
    idx, lab = keyword_labels(["heart eyes", "man and heart", "flag: Peru", "cat", "woman"], classes)
    assert idx.tolist() == [0, 2] and lab.tolist() == [1, 0]  # "man and heart" has two keywords: left out
