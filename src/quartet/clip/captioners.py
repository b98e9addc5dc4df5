"""Synthetic caption generators for dataset reinforcement (MobileCLIP 2311.17049 §3.1; MobileCLIP2 2508.20691 §3).

The paper samples N_syn captions per image from CoCa with nucleus sampling (top-p 0.9), cuts each caption at the
end-of-text token and at the first '.', and stores them as ``syn_text``. Adapters here, both from local files only:

- :class:`CoCaCaptioner`: an open_clip CoCa model (built-in config + checkpoint file, JSON config + checkpoint, a
  ``local-dir:`` folder, or in memory). Decoding is a small top-p loop over ``CoCa.forward`` with a seeded
  ``torch.Generator`` (open_clip's own ``generate`` needs a transformers API that transformers 5 removed, and draws
  from the global RNG, which makes captions depend on what ran before).
- :class:`HFCaptioner`: any Hugging Face image-to-text model saved in a local folder (BLIP, GIT,
  VisionEncoderDecoder...), via ``AutoProcessor`` + ``AutoModelForImageTextToText`` and ``generate(do_sample=True,
  top_p=0.9, top_k=0)``.

Determinism: for a given model, images and ``seed``, the captions are identical on every call, so a resumed
reinforcement run writes the same ``syn_text`` as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from PIL import Image

from quartet.clip.teachers import (
    OPENAI_MEAN,
    OPENAI_STD,
    _Preprocess,
    check_normalisation,
    load_open_clip,
    views_to_uint8,
)
from quartet.core.errors import QuartetError


@runtime_checkable
class Captioner(Protocol):
    """``generate(images, n, seed)`` -> for each image, ``n`` captions (cut at end-of-text and the first '.')."""

    name: str

    def generate(self, images: list[Image.Image], n: int, seed: int = 0) -> list[list[str]]: ...


def clean_caption(text: str) -> str:
    """Cut at the first '.', collapse whitespace (the paper's post-processing)."""
    return " ".join(text.split(".", 1)[0].split())


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filtering by sorting (the reference semantics): keep the smallest set of highest-probability tokens
    whose mass reaches ``top_p`` (at least one); the rest get ``-inf``."""
    sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)
    probs = sorted_logits.softmax(dim=-1)
    cum = probs.cumsum(dim=-1)
    remove = (cum - probs) >= top_p  # mass before this token already reaches top_p
    remove[..., 0] = False
    sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, idx, sorted_logits)


def sample_top_p(logits: torch.Tensor, top_p: float, gen: torch.Generator, fast_k: int = 256) -> torch.Tensor:
    """Draw one token per row from the top-p nucleus of ``softmax(logits)``; ``[B, V] -> [B]`` (long, CPU).

    Same distribution as :func:`top_p_filter` + multinomial, without a full vocabulary sort: when the ``fast_k``
    most likely tokens already hold ``top_p`` of the mass (trained captioners, nearly always) the nucleus is cut
    from them; otherwise the nucleus threshold is found by bisection (O(V) per step; ties at the threshold are kept).
    Sorting a 49k vocabulary for every token was ~60% of caption time on CPU."""
    probs = logits.float().softmax(dim=-1).cpu()
    b, v = probs.shape
    u = torch.rand(b, 1, generator=gen)
    k = min(fast_k, v)
    vals, idx = probs.topk(k, dim=-1)
    cum = vals.cumsum(-1)
    if bool((cum[:, -1] >= top_p).all()):
        keep = vals * ((cum - vals) < top_p)
        c = keep.cumsum(-1)
        j = torch.searchsorted(c, u * c[:, -1:], right=True).clamp_(max=k - 1)
        return idx.gather(1, j).squeeze(1)
    lo = torch.zeros(b, 1)
    hi = probs.max(dim=-1, keepdim=True).values
    for _ in range(20):  # largest threshold t with mass(p >= t) >= top_p (to 2^-20 of the max)
        mid = (lo + hi) / 2
        ok = (probs * (probs >= mid)).sum(-1, keepdim=True) >= top_p
        lo = torch.where(ok, mid, lo)
        hi = torch.where(ok, hi, mid)
    keep = probs * (probs >= lo)
    c = keep.cumsum(-1)
    return torch.searchsorted(c, u * c[:, -1:], right=True).clamp_(max=v - 1).squeeze(1)


def _next_token_logits(model: torch.nn.Module, image_embs: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Logits of the next token only (``[B, V]``): open_clip's multimodal decoder up to its final projection,
    applied to the last position instead of all of them (the projection to 49k tokens dominates a full forward)."""
    _, token_embs = model._encode_text(tokens)
    dec = model.text_decoder
    try:
        seq_len = token_embs.shape[1]
        x, img = token_embs, image_embs
        if not dec.batch_first:
            x, img = x.permute(1, 0, 2), img.permute(1, 0, 2)
        for block, cross in zip(dec.resblocks, dec.cross_attn):
            x = block(x, attn_mask=dec.attn_mask[:seq_len, :seq_len])
            x = cross(x, k_x=img, v_x=img)
        last = x[:, -1] if dec.batch_first else x[-1]
        out = dec.ln_final(last)
        return out @ dec.text_projection if dec.text_projection is not None else out
    except AttributeError:  # another decoder layout: the full forward
        return dec(image_embs, token_embs)[:, -1]


def _fit(img: Image.Image, size: int) -> Image.Image:
    """open_clip's eval preprocessing: resize the shorter side to ``size`` (bicubic), centre-crop a square."""
    import torchvision.transforms.functional as TF

    img = img.convert("RGB") if img.mode != "RGB" else img
    if img.size == (size, size):
        return img
    img = TF.resize(img, size, interpolation=TF.InterpolationMode.BICUBIC)
    return TF.center_crop(img, [size, size])


class CoCaCaptioner:
    """An open_clip CoCa model sampling captions with top-p."""

    def __init__(self, model: torch.nn.Module, image_size: int, mean: Sequence[float] = OPENAI_MEAN,
                 std: Sequence[float] = OPENAI_STD, tokenizer: Any | None = None, name: str = "coca",
                 top_p: float = 0.9, max_tokens: int = 30, temperature: float = 1.0,
                 device: str | torch.device = "cpu", source: str = "in-memory") -> None:
        import open_clip

        if not hasattr(model, "text_decoder"):
            raise QuartetError(f"captioner {name!r}: the model is not an open_clip CoCa (no text decoder)")
        self.name = name
        self.model = model.eval().requires_grad_(False).to(device)
        self.device = torch.device(device)
        m, s = check_normalisation(mean, std, f"captioner {name!r}")
        self.pre = _Preprocess(int(image_size), m, s)
        ctx = int(getattr(model.text, "context_length", 77) or 77)
        self.tokenizer = tokenizer or open_clip.SimpleTokenizer(context_length=ctx)
        self.sot = int(getattr(self.tokenizer, "sot_token_id", 49406))
        self.eot = int(getattr(self.tokenizer, "eot_token_id", 49407))
        self.max_tokens = max(1, min(int(max_tokens), ctx - 1))
        self.top_p = float(top_p)
        self.temperature = float(temperature)
        self.source = source

    @classmethod
    def from_model(cls, model: torch.nn.Module, image_size: int, mean: Sequence[float] = OPENAI_MEAN,
                   std: Sequence[float] = OPENAI_STD, **kw: Any) -> CoCaCaptioner:
        return cls(model, image_size, mean, std, **kw)

    @classmethod
    def from_checkpoint(cls, model_name_or_config: str | Path, checkpoint_path: str | Path | None = None,
                        **kw: Any) -> CoCaCaptioner:
        """Same sources as :meth:`quartet.clip.teachers.OpenClipTeacher.from_checkpoint` (local files only)."""
        device = kw.pop("device", "cpu")
        model, tokenizer, pp, source = load_open_clip(model_name_or_config, checkpoint_path, device=device)
        size = pp.get("size", 224)
        size = int(size[0] if isinstance(size, (list, tuple)) else size)
        kw.setdefault("name", Path(str(model_name_or_config).removeprefix("local-dir:")).stem)
        return cls(model, size, pp.get("mean", OPENAI_MEAN), pp.get("std", OPENAI_STD), tokenizer=tokenizer,
                   device=device, source=source, **kw)

    def to(self, device: str | torch.device) -> CoCaCaptioner:
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    @torch.no_grad()
    def _sample(self, pixels: torch.Tensor, gen: torch.Generator) -> list[list[int]]:
        model = self.model
        x = self.pre(pixels, self.device)
        _, image_embs = model._encode_image(x)
        b = x.shape[0]
        out = torch.full((b, 1), self.sot, dtype=torch.long, device=self.device)
        done = torch.zeros(b, dtype=torch.bool)
        for step in range(self.max_tokens):
            logits = _next_token_logits(model, image_embs, out).float()
            if bool(torch.isnan(logits).any() or torch.isposinf(logits).any()):
                raise QuartetError(f"captioner {self.name!r} produced non-finite logits at token {step} (NaN/inf "
                                   "weights, or an overflow at reduced precision); check the checkpoint or run "
                                   "it in fp32")
            if step == 0:
                logits[:, self.eot] = float("-inf")  # at least one token
            nxt = sample_top_p(logits / self.temperature, self.top_p, gen)
            nxt[done] = self.eot
            done |= nxt == self.eot
            out = torch.cat([out, nxt.to(self.device)[:, None]], dim=1)
            if bool(done.all()):
                break
        seqs = []
        for row in out[:, 1:].cpu().tolist():
            seqs.append(row[: row.index(self.eot)] if self.eot in row else row)
        return seqs

    def decode(self, ids: list[int]) -> str:
        text = self.tokenizer.decode(ids)
        return text.replace("<start_of_text>", "").replace("<end_of_text>", "")

    def generate(self, images: list[Image.Image], n: int, seed: int = 0) -> list[list[str]]:
        if n <= 0 or not images:
            return [[] for _ in images]
        pixels = views_to_uint8([_fit(im, self.pre.size) for im in images])
        pixels = pixels.repeat_interleave(n, dim=0)
        gen = torch.Generator().manual_seed(int(seed) % 2**63)
        seqs = self._sample(pixels, gen)
        caps = [clean_caption(self.decode(s)) for s in seqs]
        return [caps[i * n:(i + 1) * n] for i in range(len(images))]

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "open_clip_coca", "source": self.source, "top_p": self.top_p,
                "max_tokens": self.max_tokens, "image_size": self.pre.size}


class HFCaptioner:
    """A Hugging Face image-to-text model from a local folder, sampling with top-p."""

    def __init__(self, model: Any, processor: Any, name: str = "hf", top_p: float = 0.9, max_new_tokens: int = 30,
                 device: str | torch.device = "cpu", source: str = "in-memory") -> None:
        self.model = model.eval().requires_grad_(False).to(device)
        self.processor = processor
        self.name = name
        self.top_p = float(top_p)
        self.max_new_tokens = int(max_new_tokens)
        self.device = torch.device(device)
        self.source = source

    @classmethod
    def from_pretrained(cls, local_dir: str | Path, **kw: Any) -> HFCaptioner:
        """Load ``AutoProcessor`` + ``AutoModelForImageTextToText`` from ``local_dir`` (never from a hub)."""
        from transformers import AutoModelForImageTextToText, AutoProcessor

        path = Path(local_dir)
        if not (path / "config.json").is_file():
            raise QuartetError(f"{path}: not a Hugging Face model folder (no config.json); captioners load from "
                               "local folders only")
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True)
        kw.setdefault("name", path.name)
        return cls(model, processor, source=str(path), **kw)

    def to(self, device: str | torch.device) -> HFCaptioner:
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    @torch.no_grad()
    def generate(self, images: list[Image.Image], n: int, seed: int = 0) -> list[list[str]]:
        if n <= 0 or not images:
            return [[] for _ in images]
        inputs = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items() if isinstance(v, torch.Tensor)}
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(seed) % 2**63)
            out = self.model.generate(**inputs, do_sample=True, top_p=self.top_p, top_k=0,
                                      num_return_sequences=n, max_new_tokens=self.max_new_tokens)
        decode: Callable[..., list[str]] = getattr(self.processor, "batch_decode", None) or \
            self.processor.tokenizer.batch_decode
        texts = [clean_caption(t) for t in decode(out, skip_special_tokens=True)]
        return [texts[i * n:(i + 1) * n] for i in range(len(images))]

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "hf_image_to_text", "source": self.source, "top_p": self.top_p,
                "max_new_tokens": self.max_new_tokens}


def tiny_coca_config(image_size: int = 32, context_length: int = 16, width: int = 16) -> dict[str, Any]:
    """An open_clip CoCa model config of ~1.6M parameters (random init; for tests and untrained stand-ins). The
    multimodal decoder attends to the attentional pooler's tokens, so ``embed_dim`` equals the decoder ``width``."""
    embed_dim = width
    vision = {"image_size": image_size, "layers": 1, "width": 32, "patch_size": max(4, image_size // 4),
              "head_width": 16, "mlp_ratio": 2.0, "attentional_pool": True, "attn_pooler_heads": 2,
              "attn_pooler_queries": 16, "output_tokens": True}
    text = {"context_length": context_length, "vocab_size": 49408, "width": width, "heads": 2, "layers": 1,
            "mlp_ratio": 2.0, "embed_cls": True, "output_tokens": True}
    mm = {"context_length": context_length, "vocab_size": 49408, "width": width, "heads": 2, "layers": 1,
          "mlp_ratio": 2.0, "attn_pooler_heads": 2}
    return {"embed_dim": embed_dim, "vision_cfg": vision, "text_cfg": text, "multimodal_cfg": mm, "custom_text": True}
