"""Shared helpers for the dataset-reinforcement tests: tiny random open_clip teachers (< 1M parameters), a tiny
CoCa captioner and small image-text shards. Imported explicitly by the tests (not a conftest)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from quartet.clip.augment import AugConfig
from quartet.clip.captioners import CoCaCaptioner, tiny_coca_config
from quartet.clip.reinforce import ReinforceConfig
from quartet.clip.shards import encode_png, write_image_text_shards
from quartet.clip.teachers import OpenClipTeacher, TeacherEnsemble, open_clip_from_config, tiny_clip_config

CROP = 32


def tiny_teacher(name: str, embed_dim: int, image_size: int, seed: int) -> OpenClipTeacher:
    torch.manual_seed(seed)
    model = open_clip_from_config(tiny_clip_config(embed_dim=embed_dim, image_size=image_size))
    return OpenClipTeacher.from_model(model, name, image_size)


def tiny_ensemble() -> TeacherEnsemble:
    return TeacherEnsemble([tiny_teacher("ta", 16, 32, 0), tiny_teacher("tb", 24, 24, 1)])


def tiny_captioner(seed: int = 2) -> CoCaCaptioner:
    torch.manual_seed(seed)
    return CoCaCaptioner.from_model(open_clip_from_config(tiny_coca_config(image_size=32)), 32, max_tokens=5)


def random_pairs(n: int, seed: int = 0, size: tuple[int, int] = (40, 36)) -> list[tuple[bytes, str, str]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        img[: size[1] // 2] //= 2  # some structure, so crops differ
        out.append((encode_png(img), f"a picture of thing {i}", f"uid-{seed}-{i}"))
    return out


def make_shards(root: Path, n: int = 6, per_shard: int = 2, seed: int = 0) -> Path:
    write_image_text_shards(random_pairs(n, seed), root, samples_per_shard=per_shard)
    return root


def small_cfg(**kw: object) -> ReinforceConfig:
    base: dict[str, object] = {"n_aug": 2, "n_syn": 2, "aug": AugConfig(crop_size=CROP), "batch_size": 2,
                               "dtype": "fp32"}
    base.update(kw)
    return ReinforceConfig(**base)  # type: ignore[arg-type]


def rewrite_tar(path: Path, edit: dict[str, bytes | None]) -> None:
    """Rewrite a shard with some members replaced (bytes) or dropped (None)."""
    members = []
    with tarfile.open(path) as tar:
        for m in tar:
            f = tar.extractfile(m)
            members.append((m.name, f.read() if f else b""))
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            if name in edit:
                if edit[name] is None:
                    continue
                data = edit[name]  # type: ignore[assignment]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def member_names(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (20, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()
