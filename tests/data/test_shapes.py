from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quartet.data import shapes


def test_shapes_deterministic_and_prefix_stable() -> None:
    a = shapes.load_shapes(n=40, size=48, seed=3)
    b = shapes.load_shapes(n=40, size=48, seed=3, refresh=True)
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    small = shapes.load_shapes(n=10, size=48, seed=3)
    assert small.captions == a.captions[:10] and np.array_equal(small.images, a.images[:10])
    other = shapes.load_shapes(n=40, size=48, seed=4)
    assert other.captions != a.captions
    assert a.images.shape == (40, 48, 48, 3) and a.images.dtype == np.uint8


def _check_scene(objs, relation, caption, image) -> None:
    side = image.shape[0]
    words = caption.split()
    assert words[1] == objs[0]["size"] and words[2] == objs[0]["colour"] and words[3] == objs[0]["shape"]
    assert caption == shapes.caption(objs, relation)
    for o in objs:
        assert o["r"] <= o["cx"] <= side - o["r"] and o["r"] <= o["cy"] <= side - o["r"]
        y, x = int(o["cy"]), int(o["cx"])
        assert tuple(image[y, x]) == shapes.COLOURS[o["colour"]]
    if relation:
        a, b = objs
        assert np.hypot(a["cx"] - b["cx"], a["cy"] - b["cy"]) >= a["r"] + b["r"]
        holds = {"above": a["cy"] < b["cy"], "below": a["cy"] > b["cy"], "left of": a["cx"] < b["cx"],
                 "right of": a["cx"] > b["cx"]}
        assert holds[relation]
        assert (a["shape"], a["colour"]) != (b["shape"], b["colour"])


def test_shapes_caption_matches_pixels() -> None:
    ds = shapes.load_shapes(n=200, size=64, seed=0)
    for objs, rel, cap, img in zip(ds.fields["objects"], ds.fields["relation"], ds.captions, ds.images, strict=True):
        _check_scene(objs, rel, cap, img)
    assert {r for r in ds.fields["relation"]} == {"", *shapes.RELATIONS}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), index=st.integers(0, 10**6), side=st.sampled_from([32, 64, 96]))
def test_shapes_scene_property(seed: int, index: int, side: int) -> None:
    objs, rel = shapes.sample_scene(seed, index, side)
    _check_scene(objs, rel, shapes.caption(objs, rel), shapes.render_scene(objs, side))
