"""Zero-shot classification (prompt ensembles, top-1/top-5) and image<->text retrieval (R@1/R@5).

Zero-shot follows CLIP/open_clip: each class embedding is the mean of the L2-normalised text embeddings of its
prompts (``TEMPLATES``), re-normalised; an image is assigned the class with the highest cosine similarity.
Retrieval ranks all held-out captions for each image (and the reverse); R@k counts the true pair in the top k.

Evaluation sets (``EVAL_SETS``), all real data from ``quartet.data``:

- ``emoji-groups`` / ``emoji-subgroups``: the held-out emoji split (never trained on), 9 groups / ~90 subgroups;
- ``openmoji-groups``: OpenMoji's drawings of the same concepts in another style (cross-style transfer);
- ``fashion-mnist``: 1,000 test images, 10 classes (far out of domain for emoji-trained models: near chance);
- ``emoji-retrieval``: held-out emoji image <-> CLDR name retrieval;
- ``emoji-keywords``: held-out emoji classified into the ``KEYWORDS`` most frequent words of the *training* names
  (an item belongs to the one keyword its name contains; items with none or several are left out). Unlike group
  names ("Smileys & Emotion"), these words occur in training captions, so the set measures zero-shot transfer to
  unseen images with words a model trained only on the emoji captions has seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from quartet.clip.models import ClipBundle
from quartet.core.seed import numpy_rng

TEMPLATES: tuple[str, ...] = ("{}", "an emoji of {}", "a {} emoji", "an icon of {}", "a drawing of {}")
KEYWORDS = 12
_STOP = frozenset({"with", "and", "the", "for", "button",
                   "skin", "tone", "light", "medium", "dark"})  # CLDR skin-tone modifiers: not concepts
HELDOUT_FRACTION = 0.15
SPLIT_SEED = 1234


def heldout_split(n: int, fraction: float = HELDOUT_FRACTION, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic ``(train_idx, heldout_idx)`` of ``n`` items (the same split for teachers and students)."""
    perm = numpy_rng(seed, 0).permutation(n)
    k = round(n * fraction)
    return np.sort(perm[k:]), np.sort(perm[:k])


@torch.no_grad()
def encode_images(bundle: ClipBundle, images: np.ndarray | list[Any], batch_size: int = 256) -> torch.Tensor:
    model = bundle.model
    was = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = bundle.images_to_tensor(images[i:i + batch_size])
        out.append(F.normalize(model.encode_image(x).float(), dim=-1))
    model.train(was)
    return torch.cat(out)


@torch.no_grad()
def encode_texts(bundle: ClipBundle, texts: Sequence[str], batch_size: int = 512) -> torch.Tensor:
    model = bundle.model
    was = model.training
    model.eval()
    out = []
    for i in range(0, len(texts), batch_size):
        out.append(F.normalize(model.encode_text(bundle.tokenize(list(texts[i:i + batch_size]))).float(), dim=-1))
    model.train(was)
    return torch.cat(out)


def class_embeddings(bundle: ClipBundle, class_names: Sequence[str], templates: Sequence[str] = TEMPLATES
                     ) -> torch.Tensor:
    """``[C, D]``: mean of normalised prompt embeddings per class, re-normalised (prompt ensembling)."""
    prompts = [t.format(c) for c in class_names for t in templates]
    emb = encode_texts(bundle, prompts).view(len(class_names), len(templates), -1).mean(1)
    return F.normalize(emb, dim=-1)


def zero_shot(bundle: ClipBundle, images: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
              templates: Sequence[str] = TEMPLATES, image_emb: torch.Tensor | None = None) -> dict[str, float]:
    """Top-1/top-5 accuracy (%) of nearest-class-prompt classification, and ``bal1``: top-1 averaged over the
    classes present (balanced accuracy; the held-out emoji groups are ~45% "people & body", so plain top-1
    rewards a model that predicts the majority class)."""
    img = encode_images(bundle, images) if image_emb is None else image_emb
    cls = class_embeddings(bundle, class_names, templates)
    logits = img @ cls.t()
    k = min(5, len(class_names))
    top = logits.topk(k, dim=1).indices.numpy()
    y = np.asarray(labels)
    hit = top[:, 0] == y
    per_class = [hit[y == c].mean() for c in np.unique(y)]
    return {"top1": float(hit.mean() * 100), "top5": float((top == y[:, None]).any(1).mean() * 100),
            "bal1": float(np.mean(per_class) * 100), "n": len(y), "classes": len(class_names)}


def retrieval(bundle: ClipBundle, images: np.ndarray, captions: Sequence[str],
              image_emb: torch.Tensor | None = None) -> dict[str, float]:
    """Image->text and text->image R@1/R@5 (%) over matching rows."""
    img = encode_images(bundle, images) if image_emb is None else image_emb
    txt = encode_texts(bundle, captions)
    sim = img @ txt.t()
    n = sim.shape[0]
    gt = torch.arange(n)
    out: dict[str, float] = {"n": n}
    for name, s in (("i2t", sim), ("t2i", sim.t())):
        ranks = (s > s[gt, gt][:, None]).sum(1)  # how many candidates beat the true pair
        for k in (1, 5):
            out[f"{name}_r{k}"] = float((ranks < k).float().mean() * 100)
    return out


def _nice(name: str) -> str:
    return name.replace("-", " ").replace("&", "and").lower()


@dataclass
class EvalData:
    """Arrays for one evaluation set (zero-shot: labels + class names; retrieval: captions)."""

    name: str
    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    captions: list[str] | None = None


EVAL_SETS = ("emoji-groups", "emoji-subgroups", "openmoji-groups", "fashion-mnist", "emoji-retrieval",
             "emoji-keywords")


def _words(caption: str) -> set[str]:
    import re

    return {w for w in re.findall(r"[a-z]+", caption.lower()) if len(w) >= 3 and w not in _STOP}


def keyword_classes(train_captions: Sequence[str], k: int = KEYWORDS) -> list[str]:
    """The ``k`` words found in the most training captions (ties broken alphabetically)."""
    from collections import Counter

    df = Counter(w for c in train_captions for w in _words(c))
    return [w for w, _ in sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def keyword_labels(captions: Sequence[str], classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(item indices, labels)`` of the captions that contain exactly one of ``classes``."""
    idx, lab = [], []
    for i, c in enumerate(captions):
        hit = [j for j, w in enumerate(classes) if w in _words(c)]
        if len(hit) == 1:
            idx.append(i)
            lab.append(hit[0])
    return np.asarray(idx, dtype=np.int64), np.asarray(lab, dtype=np.int64)


def load_eval_sets(names: Sequence[str] = EVAL_SETS, size: int = 64, limit: int | None = None) -> list[EvalData]:
    """Load the named evaluation sets (see the module docstring) from ``quartet.data``."""
    from quartet import data
    from quartet.core.errors import QuartetError

    out = []
    emoji = full = None
    for name in names:
        if name.startswith("emoji"):
            if emoji is None:
                full = data.load("emoji", size=size)
                emoji = full.subset(heldout_split(len(full))[1])
            if name == "emoji-groups":
                out.append(EvalData(name, emoji.images, emoji.labels, [_nice(c) for c in emoji.class_names]))
            elif name == "emoji-subgroups":
                subs = list(emoji.fields["subgroup"])
                names_ = sorted(set(subs))
                out.append(EvalData(name, emoji.images, np.array([names_.index(s) for s in subs]),
                                    [_nice(s) for s in names_]))
            elif name == "emoji-retrieval":
                out.append(EvalData(name, emoji.images, captions=list(emoji.captions)))
            elif name == "emoji-keywords":
                classes = keyword_classes([full.captions[i] for i in heldout_split(len(full))[0]])
                idx, lab = keyword_labels(list(emoji.captions), classes)
                out.append(EvalData(name, emoji.images[idx], lab, classes))
            else:
                raise QuartetError(f"unknown evaluation set {name!r}; choose from {EVAL_SETS}")
        elif name == "openmoji-groups":
            om = data.load("openmoji", size=size)
            idx = numpy_rng(SPLIT_SEED, 1).permutation(len(om))[: limit or 1000]
            om = om.subset(np.sort(idx))
            out.append(EvalData(name, om.images, om.labels, [_nice(c) for c in om.class_names]))
        elif name == "fashion-mnist":
            fm = data.load("fashion_mnist", split="test", limit=limit or 1000)
            out.append(EvalData(name, fm.rgb(), fm.labels, [c.lower() for c in fm.class_names]))
        else:
            raise QuartetError(f"unknown evaluation set {name!r}; choose from {EVAL_SETS}")
    return out


def evaluate(bundle: ClipBundle, sets: Sequence[EvalData]) -> dict[str, float]:
    """Flat metrics: ``<set>/top1``, ``<set>/top5`` for zero-shot sets, ``<set>/i2t_r1`` ... for retrieval."""
    res: dict[str, float] = {}
    cache: dict[int, torch.Tensor] = {}  # sets sharing an image array are encoded once
    for s in sets:
        if id(s.images) not in cache:
            cache[id(s.images)] = encode_images(bundle, s.images)
        img = cache[id(s.images)]
        if s.captions is not None:
            r = retrieval(bundle, s.images, s.captions, image_emb=img)
        else:
            assert s.labels is not None and s.class_names is not None
            r = zero_shot(bundle, s.images, s.labels, s.class_names, image_emb=img)
        res.update({f"{s.name}/{k}": v for k, v in r.items() if k not in ("n", "classes")})
    return res


def results_table(results: dict[str, dict[str, float]]) -> str:
    """Markdown table, one row per model, one column per metric."""
    from quartet.core.report import markdown_table

    rows = [{"model": name, **{k: round(v, 2) for k, v in r.items()}} for name, r in results.items()]
    return markdown_table(rows)


@dataclass
class EvalConfig:
    """``quartet clip eval``: zero-shot and retrieval metrics of one or more checkpoints."""

    checkpoints: list[str] = field(default_factory=list)  # .safetensors files (train / train-teacher, LiT too)
    sets: list[str] = field(default_factory=lambda: list(EVAL_SETS))
    out: str = "clip-eval.json"


def main(argv: list[str]) -> int:
    from pathlib import Path

    from quartet.clip.lit import load_for_eval
    from quartet.core.config import parse_cli
    from quartet.core.errors import QuartetError
    from quartet.core.io import atomic_write_json

    cfg = parse_cli(EvalConfig, argv, prog="quartet clip eval")
    if not cfg.checkpoints:
        raise QuartetError("pass --checkpoints a.safetensors [b.safetensors ...]")
    sets = load_eval_sets(cfg.sets)
    results = {}
    for path in cfg.checkpoints:
        results[Path(path).parent.name + "/" + Path(path).name] = evaluate(load_for_eval(path), sets)
    atomic_write_json(cfg.out, results)
    print(results_table(results))
    print(f"results: {cfg.out}")
    return 0
