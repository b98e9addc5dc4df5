"""Shared fixtures for the clip tests: one thread, tiny synthetic image-text data, fixed seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_pairs() -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """24 coloured-shape images (uint8 [24,40,40,3]) with captions, labels and class names."""
    from PIL import Image, ImageDraw

    colours = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 30, 220)}
    shapes = ["circle", "square"]
    images, captions, labels, names = [], [], [], []
    for c, _rgb in colours.items():
        for s in shapes:
            names.append(f"{c} {s}")
    for i in range(24):
        c = list(colours)[i % 3]
        s = shapes[(i // 3) % 2]
        im = Image.new("RGB", (40, 40), (255, 255, 255))
        d = ImageDraw.Draw(im)
        r = 8 + (i % 4) * 2
        box = (20 - r, 20 - r, 20 + r, 20 + r)
        (d.ellipse if s == "circle" else d.rectangle)(box, fill=colours[c])
        images.append(np.asarray(im))
        captions.append(f"a {['small', 'big'][i % 2]} {c} {s}")
        labels.append(names.index(f"{c} {s}"))
    return np.stack(images), captions, np.array(labels), names


def make_table(images: np.ndarray, captions: list[str], n_aug: int = 3, n_syn: int = 2, crop_size: int = 32,
               dims: tuple[int, ...] = (8, 6), ensemble=None, seed: int = 0):
    """A ReinforcedTable built in memory: stored augmentations drawn with ``quartet.clip.augment`` and teacher
    embeddings either from ``ensemble`` (run on the replayed views, as reinforcement does) or random unit rows."""
    from PIL import Image

    from quartet.clip.augment import AugConfig, apply_record, sample_record
    from quartet.clip.train_data import ReinforcedTable

    rng = np.random.default_rng(seed)
    cfg = AugConfig(crop_size=crop_size)
    pils = [Image.fromarray(a) for a in images]
    aug = [[sample_record(rng, im.size[0], im.size[1], cfg) for _ in range(n_aug)] for im in pils]
    syn = [[f"{c} picture {k}" for k in range(n_syn)] for c in captions]

    def unit(shape):
        x = rng.standard_normal(shape).astype(np.float32)
        out, s = [], 0
        for d in dims:
            blk = x[..., s:s + d]
            out.append(blk / np.linalg.norm(blk, axis=-1, keepdims=True))
            s += d
        return np.concatenate(out, -1)

    if ensemble is None:
        iemb = [unit((n_aug, sum(dims))) for _ in pils]
        temb = unit((len(pils), sum(dims)))
        semb = [unit((n_syn, sum(dims))) for _ in pils]
        names, scales = [f"t{k}" for k in range(len(dims))], [50.0] * len(dims)
    else:
        import torch

        with torch.no_grad():
            iemb = [ensemble.encode_images([apply_record(im, r, crop_size) for r in recs]).float().numpy()
                    for im, recs in zip(pils, aug)]
            temb = ensemble.encode_texts(captions).float().numpy()
            semb = [ensemble.encode_texts(s).float().numpy() for s in syn]
        dims, names, scales = tuple(ensemble.dims), list(ensemble.names), list(ensemble.scales)
    return ReinforcedTable(keys=[f"{i:04d}" for i in range(len(pils))], images=pils, captions=list(captions),
                           syn_texts=syn, aug=aug, image_emb=iemb, text_emb=temb, syn_emb=semb,
                           teacher_names=names, teacher_dims=list(dims), teacher_scales=scales,
                           meta={"crop_size": crop_size})
