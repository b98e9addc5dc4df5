"""Image-text WebDataset shards: the input of dataset reinforcement.

One sample = three tar members sharing a key (WebDataset convention: the key is the member name up to its first
dot): ``{key}.{png|jpg|webp...}`` (the image bytes exactly as given, never re-encoded), ``{key}.txt`` (the caption,
UTF-8) and ``{key}.json`` (``{"uid", "sha256"}``, the sha256 of the image bytes). Keys are zero-padded global sample
indices, so they are unique and sort in order across shards. Members carry a fixed mtime and owner, so writing the
same source twice gives byte-identical shards. Shards are written atomically (temp file + rename) and listed in
``manifest.json`` with their sample counts and sha256.

Sources: a ``quartet.data`` :class:`~quartet.data.types.ImageTextDataset` (arrays encoded as PNG), an iterable of
``(image_bytes, caption, uid)``, a folder of images with same-stem ``.txt`` captions, or a CSV with columns
``image,caption[,uid]`` (image paths relative to the CSV).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from quartet.core.errors import DataCorruptError, QuartetError
from quartet.core.io import atomic_path, atomic_write_json, read_json, sha256_bytes, sha256_file
from quartet.core.progress import get_logger
from quartet.data.types import ImageTextDataset

log = get_logger("quartet.clip.shards")

MANIFEST = "manifest.json"
FORMAT = "quartet.clip.image-text-shards"
IMAGE_EXTS = ("png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff")
_PIL_EXT = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp", "GIF": "gif", "TIFF": "tif"}


@dataclass
class ImageTextSample:
    """One image-text pair as stored in a shard."""

    key: str
    image_bytes: bytes
    image_ext: str
    caption: str
    uid: str
    sha256: str


# ----------------------------------------------------------------------------------------------------------------
# Tar members


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add a regular file with a fixed mtime/owner (reproducible shards)."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def image_ext(image_bytes: bytes, what: str = "image") -> str:
    """The file extension for encoded image bytes (from the decoder's format); :class:`DataCorruptError` if they
    do not decode."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as img:
            fmt = img.format
            img.load()
    except Exception as e:
        raise DataCorruptError(f"{what}: image bytes do not decode ({type(e).__name__}: {e})") from e
    return _PIL_EXT.get(fmt or "", (fmt or "img").lower())


def encode_png(array: np.ndarray) -> bytes:
    """uint8 ``[H, W, 3]`` (or ``[H, W]``) as PNG bytes (lossless, deterministic)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def group_members(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield ``(key, {extension: bytes})`` for consecutive members sharing a key; raises :class:`DataCorruptError`
    naming the shard (and the member) when the tar is corrupt or truncated."""
    cur_key: str | None = None
    cur: dict[str, bytes] = {}
    member = "?"
    member_count = 0
    try:
        size = path.stat().st_size
        with tarfile.open(path, mode="r:") as tar:
            for m in tar:
                member = m.name
                member_count += 1
                if not m.isfile():
                    continue
                base = m.name.rsplit("/", 1)[-1]
                key, dot, ext = base.partition(".")
                if not dot:
                    raise DataCorruptError(f"{path}: member {m.name!r} has no extension")
                f = tar.extractfile(m)
                data = f.read() if f is not None else b""
                if len(data) != m.size:
                    raise DataCorruptError(f"{path}: member {m.name!r} is truncated ({len(data)} of {m.size} bytes)")
                if key != cur_key:
                    if cur_key is not None:
                        yield cur_key, cur
                    cur_key, cur = key, {}
                if ext in cur:
                    raise DataCorruptError(f"{path}: duplicate member {m.name!r}")
                cur[ext] = data
            member = "<end of archive>"
            end = tar.offset  # a complete tar ends with two zero blocks; a cut at a member boundary lacks them
            if end + 2 * tarfile.BLOCKSIZE > size:
                raise DataCorruptError(f"{path}: corrupt or truncated tar (no end-of-archive marker after "
                                       f"{member_count} members); re-create the shard")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataCorruptError(f"{path}: corrupt or truncated tar near member {member!r} ({e}); "
                               "re-create the shard") from e
    if cur_key is not None:
        yield cur_key, cur


def _image_member(members: dict[str, bytes]) -> tuple[str, bytes] | None:
    for ext in IMAGE_EXTS:
        if ext in members:
            return ext, members[ext]
    return None


def parse_sample(path: Path, key: str, members: dict[str, bytes]) -> ImageTextSample:
    """Check and decode one sample's members (image, ``.txt``, ``.json``); :class:`DataCorruptError` names the
    shard and key when one is missing or the image bytes do not match the stored sha256."""
    where = f"{path.name}:{key}"
    img = _image_member(members)
    if img is None:
        raise DataCorruptError(f"{where}: no image member (one of {', '.join(IMAGE_EXTS)})")
    if "txt" not in members:
        raise DataCorruptError(f"{where}: no .txt caption member")
    try:
        caption = members["txt"].decode("utf-8")
        meta = json.loads(members["json"]) if "json" in members else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataCorruptError(f"{where}: caption or .json member is not valid UTF-8/JSON ({e})") from e
    digest = sha256_bytes(img[1])
    stored = meta.get("sha256")
    if stored is not None and stored != digest:
        raise DataCorruptError(f"{where}: image sha256 {digest[:16]}... differs from the stored {str(stored)[:16]}...")
    return ImageTextSample(key, img[1], img[0], caption, str(meta.get("uid", key)), digest)


def iter_shard(path: str | Path) -> Iterator[ImageTextSample]:
    """The samples of one image-text shard, in order (strict: the first bad sample raises)."""
    p = Path(path)
    for key, members in group_members(p):
        yield parse_sample(p, key, members)


# ----------------------------------------------------------------------------------------------------------------
# Sources


def _from_dataset(ds: ImageTextDataset) -> Iterator[tuple[bytes, str, str]]:
    name = str(ds.meta.get("name", "item"))
    for i in range(len(ds)):
        yield encode_png(ds.images[i]), ds.captions[i], f"{name}-{i:07d}"


def _from_folder(root: Path) -> Iterator[tuple[bytes, str, str]]:
    images = sorted(p for p in root.rglob("*") if p.suffix.lower().lstrip(".") in IMAGE_EXTS and p.is_file())
    if not images:
        raise QuartetError(f"{root}: no images ({', '.join(IMAGE_EXTS)}) found")
    for p in images:
        cap = p.with_suffix(".txt")
        if not cap.is_file():
            raise QuartetError(f"{p}: no caption file {cap.name} beside it (folder sources need one .txt per image)")
        yield p.read_bytes(), cap.read_text(encoding="utf-8").strip(), p.relative_to(root).with_suffix("").as_posix()


def _from_csv(path: Path) -> Iterator[tuple[bytes, str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"image", "caption"} <= set(reader.fieldnames):
            raise QuartetError(f"{path}: CSV needs columns 'image' and 'caption' (optional 'uid'), "
                               f"got {reader.fieldnames}")
        for row_no, row in enumerate(reader, start=2):
            img = (path.parent / row["image"]).resolve()
            if not img.is_file():
                raise QuartetError(f"{path}:{row_no}: image file {img} not found")
            yield img.read_bytes(), row["caption"], row.get("uid") or Path(row["image"]).with_suffix("").as_posix()


def load_named_source(name: str, limit: int | None = None, size: int = 64) -> ImageTextDataset:
    """A ``quartet.data`` image-text source by name (``emoji``, ``openclipart``, ``openmoji``...)."""
    import quartet.data as qd

    loader = getattr(qd, "load", None)
    if loader is not None:
        ds = loader(name, limit=limit, size=size)
    else:  # per-importer functions (older quartet.data without the registry)
        import importlib

        try:
            mod = importlib.import_module(f"quartet.data.{name}")
        except ModuleNotFoundError as e:
            raise QuartetError(f"unknown image-text source {name!r}") from e
        ds = getattr(mod, f"load_{name}")(size=size, limit=limit)
    if not isinstance(ds, ImageTextDataset):
        raise QuartetError(f"source {name!r} is not an image-text dataset (got {type(ds).__name__})")
    return ds


def resolve_source(source: Any, limit: int | None = None, size: int = 64) -> Iterable[tuple[bytes, str, str]]:
    """Turn any supported source into an iterable of ``(image_bytes, caption, uid)``."""
    if isinstance(source, ImageTextDataset):
        return _from_dataset(source if limit is None else source.subset(slice(0, limit)))
    if isinstance(source, (str, Path)):
        p = Path(source)
        if p.is_dir():
            it: Iterable[tuple[bytes, str, str]] = _from_folder(p)
        elif p.suffix.lower() == ".csv" and p.is_file():
            it = _from_csv(p)
        elif isinstance(source, str) and "/" not in source and not p.exists():
            return _from_dataset(load_named_source(source, limit=limit, size=size))
        else:
            raise QuartetError(f"source {source!r}: not a folder, a .csv file or a quartet.data dataset name")
    else:
        it = source
    if limit is None:
        return it
    import itertools

    return itertools.islice(it, limit)


# ----------------------------------------------------------------------------------------------------------------
# Writing and listing


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.tar"


def write_image_text_shards(source: Any, out_dir: str | Path, samples_per_shard: int = 256, *,
                            limit: int | None = None, size: int = 64, on_error: str = "raise",
                            max_caption_chars: int = 2000) -> dict[str, Any]:
    """Write ``source`` as image-text shards in ``out_dir`` and return the manifest (also written to
    ``out_dir/manifest.json``).

    Bad samples (image that does not decode, empty or over-long caption) raise :class:`DataCorruptError` with
    ``on_error="raise"``; with ``"skip"`` they are logged and counted in ``manifest["skipped"]``."""
    if samples_per_shard < 1:
        raise QuartetError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
    if on_error not in ("raise", "skip"):
        raise QuartetError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST).exists():
        raise QuartetError(f"{out} already holds shards ({MANIFEST}); choose an empty folder")
    shards: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    seen: set[str] = set()
    buf: list[tuple[str, str, bytes, str, str]] = []
    index = 0

    def flush() -> None:
        name = shard_name(len(shards))
        with atomic_path(out / name) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            os.chmod(tmp, 0o644)  # mkstemp creates 0600
            for key, ext, data, caption, uid in buf:
                add_member(tar, f"{key}.{ext}", data)
                add_member(tar, f"{key}.txt", caption.encode("utf-8"))
                meta = {"uid": uid, "sha256": sha256_bytes(data)}
                add_member(tar, f"{key}.json", json.dumps(meta, ensure_ascii=False).encode("utf-8"))
        shards.append({"name": name, "count": len(buf), "bytes": (out / name).stat().st_size,
                       "sha256": sha256_file(out / name)})
        buf.clear()

    for image_bytes, caption, uid in resolve_source(source, limit=limit, size=size):
        uid = str(uid)
        try:
            if uid in seen:
                raise DataCorruptError(f"duplicate uid {uid!r}")
            ext = image_ext(image_bytes, what=f"sample {uid!r}")
            caption = caption.strip()
            if not caption:
                raise DataCorruptError(f"sample {uid!r}: empty caption")
            if len(caption) > max_caption_chars:
                raise DataCorruptError(f"sample {uid!r}: caption has {len(caption)} characters "
                                       f"(> max_caption_chars={max_caption_chars})")
        except DataCorruptError as e:
            if on_error == "raise":
                raise
            reason = str(e).split(": ", 1)[-1].split(" (")[0]
            skipped[reason] = skipped.get(reason, 0) + 1
            log.warning("skipping %s", e)
            continue
        seen.add(uid)
        buf.append((f"{index:09d}", ext, image_bytes, caption, uid))
        index += 1
        if len(buf) >= samples_per_shard:
            flush()
    if buf:
        flush()
    if not shards:
        raise QuartetError("the source yielded no usable samples; nothing written")
    manifest = {"format": FORMAT, "version": 1, "num_samples": index, "num_shards": len(shards),
                "shards": shards, "skipped": skipped}
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def list_shards(path: str | Path) -> list[Path]:
    """Shard files of a folder (from its ``manifest.json`` when present, else every ``*.tar``), a single ``.tar``
    file, or a list of them."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise QuartetError(f"{p}: no such shard file or folder")
    if (p / MANIFEST).is_file():
        manifest = read_json(p / MANIFEST)
        files = [p / s["name"] for s in manifest.get("shards", [])]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise DataCorruptError(f"{p}: shards listed in {MANIFEST} are missing: {missing[:5]}")
        return files
    files = sorted(p.glob("*.tar"))
    if not files:
        raise QuartetError(f"{p}: no .tar shards")
    return files


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The ``manifest.json`` of an image-text shard folder."""
    m = read_json(Path(path) / MANIFEST)
    if m.get("format") != FORMAT:
        raise DataCorruptError(f"{path}/{MANIFEST}: not an image-text shard manifest (format={m.get('format')!r})")
    return m
