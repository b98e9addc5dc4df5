"""``quartet lm prepare``: tokenize a corpus, decompose it into power-of-two buckets, write shards + manifest.

The corpus is cut into parts of ``part_docs`` documents. Each part is tokenized (EOS appended per document), split into
training and held-out documents (by a hash of the id), decomposed (:mod:`quartet.lm.decompose`) and written as flat
bucket arrays plus the raw token stream for the baselines; ``done.json`` is written last. Parts run on Ray Data
(a local Ray by default, ``--ray-address`` for a cluster) or in-process (``--engine local``, the same code); a rerun
skips finished parts, and a rerun with different settings is refused. At the end ``manifest.json`` is assembled and
the App. F statistics are printed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from quartet.core.config import parse_cli, to_dict
from quartet.core.errors import QuartetError
from quartet.core.io import atomic_write_json, atomic_write_text, read_json
from quartet.core.progress import get_logger, progress_bar
from quartet.core.seed import numpy_rng
from quartet.lm import stats as lmstats
from quartet.lm.corpus import is_heldout, load_documents
from quartet.lm.decompose import check_range, decompose_lengths, gather_buckets
from quartet.lm.store import FORMAT, load_settings, write_array
from quartet.lm.tokenizer import encode_documents, load_tokenizer, token_dtype, train_bpe

log = get_logger("lm.prepare")


@dataclass
class PrepareConfig:
    """Tokenize and decompose a corpus into Dataset Decomposition buckets (arXiv 2405.13226)."""

    source: str = "debian,pydocs"
    """comma-separated quartet.data corpora and/or .jsonl/.txt files or folders"""
    out: Path = Path("runs/lm/data/debian-pydocs")
    tokenizer: str = "bpe:2048"
    """gpt2 | bpe:<vocab> (trained on the corpus) | file:<tokenizer.json>"""
    min_log2: int = 5
    """shortest bucket 2^min (the paper uses 8 = 256 tokens; 5 suits this CPU-sized setup)"""
    max_log2: int = 10
    """longest bucket 2^max (the paper uses 13 = 8192)"""
    variant: Literal["binary", "random"] = "binary"
    seed: int = 0
    val_fraction: float = 0.02
    part_docs: int = 4096
    limit: int | None = None
    """at most this many documents per corpus item"""
    sample: float = 1.0
    """keep this fraction of the training documents (by a hash of the id; held-out documents are all kept)"""
    bpe_train_chars: int = 20_000_000
    engine: Literal["ray", "local"] = "ray"
    ray_address: str | None = None
    workers: int = 2
    overwrite: bool = False
    stats_len: int = 1024
    """n of the C&C-n / Pack-n rows in the statistics table"""
    extra: dict[str, Any] = field(default_factory=dict)


OUTPUT_KEYS = (
    "source", "tokenizer", "min_log2", "max_log2", "variant", "seed", "val_fraction", "part_docs", "limit", "sample",
)


def settings_of(cfg: PrepareConfig) -> dict[str, Any]:
    """The settings that determine the output (engine and worker count do not)."""
    d = to_dict(cfg)
    return {k: d[k] for k in OUTPUT_KEYS}


def settings_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def process_part(part: int, ids: list[str], texts: list[str], out: Path, settings: dict[str, Any],
                 tok: Any) -> dict[str, Any]:
    """Tokenize, split, decompose and write one part; returns (and writes last, atomically) its ``done.json``."""
    dtype = token_dtype(tok.vocab_size)
    held = np.array([is_heldout(i, settings["val_fraction"]) for i in ids], dtype=bool)
    t0 = time.perf_counter()
    train_texts = [t for t, h in zip(texts, held, strict=True) if not h]
    val_texts = [t for t, h in zip(texts, held, strict=True) if h]
    tokens, lens = encode_documents(tok, train_texts, dtype)
    vtokens, vlens = encode_documents(tok, val_texts, dtype)
    return write_part(part, tokens, lens, vtokens, vlens, out, settings, time.perf_counter() - t0)


def write_part(part: int, tokens: np.ndarray, lens: np.ndarray, vtokens: np.ndarray, vlens: np.ndarray, out: Path,
               settings: dict[str, Any], tokenize_s: float = 0.0) -> dict[str, Any]:
    """Decompose one tokenized part and write its bucket arrays, token streams and (last) ``done.json``."""
    folder = out / "parts" / f"p{part:05d}"
    folder.mkdir(parents=True, exist_ok=True)
    t1 = time.perf_counter()
    kmin, kmax = settings["min_log2"], settings["max_log2"]
    rng = numpy_rng(settings["seed"], part)
    pieces = decompose_lengths(lens, kmin, kmax, settings["variant"], rng)
    buckets = gather_buckets(tokens, pieces, kmin, kmax)
    files = {f"bucket_{k:02d}": write_array(folder / f"bucket_{k:02d}.npy", arr) for k, arr in buckets.items()}
    t2 = time.perf_counter()
    files["stream"] = write_array(folder / "stream.npy", tokens)
    files["stream_lens"] = write_array(folder / "stream_lens.npy", lens)
    files["val"] = write_array(folder / "val.npy", vtokens)
    files["val_lens"] = write_array(folder / "val_lens.npy", vlens)
    done = {
        "part": part, "settings_hash": settings_hash(settings), "documents": int(lens.size),
        "val_documents": int(vlens.size), "tokens": int(tokens.size), "dropped": int(pieces.dropped.sum()),
        "dropped_docs": int((pieces.dropped == lens).sum()), "files": files,
        "seconds": {"tokenize": tokenize_s, "decompose_write": t2 - t1},
    }
    atomic_write_json(folder / "done.json", done)
    return done


def _done(out: Path, part: int, h: str) -> dict[str, Any] | None:
    p = out / "parts" / f"p{part:05d}" / "done.json"
    if not p.is_file():
        return None
    d = read_json(p)
    if d.get("settings_hash") != h:
        raise QuartetError(f"{p} was written with other settings; use a new --out or --overwrite")
    for f in d["files"].values():
        if not (p.parent / f["file"]).is_file():
            return None
    return d


class _PartWorker:
    """A Ray Data worker: loads the tokenizer once, then processes whole parts."""

    def __init__(self, out: str, settings: dict[str, Any], tok_spec: str):
        self.out, self.settings, self.tok = Path(out), settings, load_tokenizer(tok_spec)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        done = process_part(int(row["part"]), list(row["ids"]), list(row["texts"]), self.out, self.settings, self.tok)
        return {"part": done["part"], "tokens": done["tokens"]}


def _check_out(cfg: PrepareConfig, settings: dict[str, Any]) -> None:
    out = cfg.out
    if cfg.overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    old = load_settings(out / "settings.json")
    if old is not None and old != settings:
        diff = {k: (old.get(k), settings.get(k)) for k in settings if old.get(k) != settings.get(k)}
        raise QuartetError(f"{out} was prepared with different settings {diff} (old, new); resume with the same "
                           f"settings, pick another --out, or pass --overwrite")
    if old is None:
        atomic_write_text(out / "settings.json", json.dumps(settings, indent=2))


def prepare(cfg: PrepareConfig) -> dict[str, Any]:
    """Run (or resume) the whole pipeline and write ``manifest.json``; returns the manifest."""
    check_range(cfg.min_log2, cfg.max_log2)
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise QuartetError(f"val_fraction {cfg.val_fraction} must be in [0, 1)")
    settings = settings_of(cfg)
    _check_out(cfg, settings)
    out = cfg.out
    docs = load_documents(cfg.source, cfg.limit)
    if cfg.sample < 1.0:
        keep = [i for i, d in enumerate(docs.ids) if is_heldout(d, cfg.val_fraction) or
                is_heldout("sample:" + d, cfg.sample)]
        docs.ids, docs.texts = [docs.ids[i] for i in keep], [docs.texts[i] for i in keep]
    log.info("%s: %d documents (%s)", cfg.source, len(docs.texts), docs.counts())
    spec = cfg.tokenizer
    if spec.startswith("bpe:"):
        path = out / "tokenizer.json"
        if not path.is_file():
            train = [t for i, t in zip(docs.ids, docs.texts, strict=True) if not is_heldout(i, cfg.val_fraction)]
            stride = max(1, int(sum(map(len, train)) // max(cfg.bpe_train_chars, 1)))
            log.info("training a byte-level BPE (vocab %s) on %d documents", spec[4:], len(train[::stride]))
            train_bpe(train[::stride], int(spec[4:]), path)
        spec = f"file:{path.resolve()}"
    tok = load_tokenizer(spec)
    n_parts = (len(docs.texts) + cfg.part_docs - 1) // cfg.part_docs
    h = settings_hash(settings)
    pending = [p for p in range(n_parts) if _done(out, p, h) is None]
    log.info("%d parts, %d to do (%d already done)", n_parts, len(pending), n_parts - len(pending))

    def rows() -> list[dict[str, Any]]:
        return [{"part": p, "ids": docs.ids[p * cfg.part_docs:(p + 1) * cfg.part_docs],
                 "texts": docs.texts[p * cfg.part_docs:(p + 1) * cfg.part_docs]} for p in pending]

    t0 = time.perf_counter()
    with progress_bar(len(pending), desc="prepare parts", unit="part") as bar:
        if pending and cfg.engine == "ray":
            from quartet.core.ray_setup import init_ray

            try:
                ray = init_ray(cfg.ray_address, num_cpus=None if cfg.ray_address else cfg.workers)
            except Exception as e:  # Ray raises a bare Exception when its node fails to start
                raise QuartetError(f"could not start or reach Ray ({e}); finished parts are kept: rerun (same "
                                   f"command) or use --engine local") from e
            ds = ray.data.from_items(rows(), override_num_blocks=len(pending))
            ds = ds.map(_PartWorker, fn_constructor_kwargs={"out": str(out.resolve()), "settings": settings,
                                                            "tok_spec": spec},
                        compute=ray.data.ActorPoolStrategy(size=cfg.workers), num_cpus=1)
            for _ in ds.iter_rows():
                bar.update(1)
        else:
            for r in rows():
                process_part(r["part"], r["ids"], r["texts"], out, settings, tok)
                bar.update(1)
    wall = time.perf_counter() - t0
    manifest = assemble_manifest(out, n_parts, settings, tok, docs.counts(), cfg.stats_len)
    manifest["run"] = {"engine": cfg.engine, "workers": cfg.workers, "wall_s": wall, "parts_done_now": len(pending)}
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


def assemble_manifest(out: Path, n_parts: int, settings: dict[str, Any], tok: Any, counts: dict[str, int],
                      stats_len: int) -> dict[str, Any]:
    """Collect every part's ``done.json`` into ``manifest.json`` content (shards per bucket, totals, statistics)."""
    h = settings_hash(settings)
    dones = []
    for p in range(n_parts):
        d = _done(out, p, h)
        if d is None:
            raise QuartetError(f"part {p} of {out} is not finished; run prepare again to complete it")
        dones.append(d)
    kmin, kmax = settings["min_log2"], settings["max_log2"]
    buckets: dict[str, Any] = {}
    for k in range(kmin, kmax + 1):
        shards = [{"file": f"parts/p{d['part']:05d}/{d['files'][f'bucket_{k:02d}']['file']}",
                   "sequences": d["files"][f"bucket_{k:02d}"]["tokens"] >> k,
                   "tokens": d["files"][f"bucket_{k:02d}"]["tokens"],
                   "sha256": d["files"][f"bucket_{k:02d}"]["sha256"]} for d in dones]
        buckets[str(k)] = {"length": 1 << k, "shards": shards, "sequences": sum(s["sequences"] for s in shards),
                           "tokens": sum(s["tokens"] for s in shards)}

    def stream(key: str) -> dict[str, Any]:
        shards = []
        for d in dones:
            base = f"parts/p{d['part']:05d}/"
            f, fl = d["files"][key], d["files"][f"{key}_lens"]
            shards.append({"tokens": {**f, "file": base + f["file"]}, "lens": {**fl, "file": base + fl["file"]},
                           "documents": fl["tokens"]})
        return {"shards": shards, "documents": sum(s["documents"] for s in shards),
                "tokens": sum(s["tokens"]["tokens"] for s in shards)}

    lens = np.concatenate([np.load(out / s["lens"]["file"]) for s in stream("stream")["shards"]])
    dropped = sum(d["dropped"] for d in dones)
    st = lmstats.table(lens, {k: buckets[str(k)]["tokens"] for k in range(kmin, kmax + 1)}, dropped, stats_len)
    dw = sum(d["seconds"]["decompose_write"] for d in dones)
    tk = sum(d["seconds"]["tokenize"] for d in dones)
    ntok = sum(d["tokens"] for d in dones)
    return {
        "format": FORMAT, "settings": settings,
        "tokenizer": {"spec": tok.spec, "vocab_size": tok.vocab_size, "eos_id": tok.eos_id,
                      "dtype": token_dtype(tok.vocab_size).name},
        "buckets": buckets, "stream": stream("stream"), "val": stream("val"),
        "dropped_tokens": dropped, "dropped_documents": sum(d["dropped_docs"] for d in dones),
        "corpus_counts": counts, "stats": st,
        "throughput": {"decompose_write_tokens_per_s": ntok / dw if dw else None,
                       "tokenize_tokens_per_s": ntok / tk if tk else None},
    }


def main(argv: list[str] | None = None) -> int:
    cfg = parse_cli(PrepareConfig, argv, prog="quartet lm prepare")
    m = prepare(cfg)
    print(lmstats.format_table(m["stats"]))
    tp = m["throughput"]
    print(f"decomposition + writing: {tp['decompose_write_tokens_per_s'] or 0:,.0f} tokens/s per worker; "
          f"tokenization {tp['tokenize_tokens_per_s'] or 0:,.0f} tokens/s")
    print(f"held-out: {m['val']['documents']} documents, {m['val']['tokens']:,} tokens")
    print(f"wrote {cfg.out / 'manifest.json'}")
    return 0
