"""In-memory reinforced tables for the training tests (imported by name: a module called ``conftest`` is ambiguous
when several test folders are collected, e.g. in spawned DDP workers)."""

from __future__ import annotations

import numpy as np


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
