"""FastVLM: vision encoder -> ``mlp2x_gelu`` projector -> any Hugging Face causal LM (LLaVA-1.5 wiring).

The prompt's single ``<image>`` placeholder is replaced by the N projected image tokens (flat, no start/end tokens),
as in apple/ml-fastvlm. Time to first token = encoder + projector + LLM prefill over (N + prompt) tokens, so an
encoder with stride 64 (FastViTHD: 256 tokens at 1024 px) keeps prefill short where ViT-L/14 would emit 5,329.

Checkpoints are a folder: ``config.json`` (the :class:`VLMConfig`, the LLM's HF config, encoder/LLM widths),
``model.safetensors`` (train-time weights; fuse with ``reparameterize()`` for inference) and ``tokenizer/``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from quartet.core.config import from_dict, to_dict
from quartet.core.device import autocast, synchronize
from quartet.core.errors import QuartetError
from quartet.core.io import atomic_write_text
from quartet.vlm.encoder import VisionEncoder
from quartet.vlm.text import DEFAULT_SYSTEM, IMAGE_TOKEN, chat_prompt, ensure_image_token, qwen2_config

IGNORE = -100  # label value the LM loss skips (prompt and image positions)


@dataclass
class VLMConfig:
    """A VLM = vision preset + projector + LLM (a preset name with random weights, or a local HF directory)."""

    encoder: str = "fastvithd_tiny"
    resolution: int = 128
    llm: str = "qwen2_tiny"
    llm_path: str | None = None  # local directory with a released HF causal LM and its tokenizer
    encoder_weights: str | None = None  # local timm/MobileCLIP/FastVLM encoder checkpoint
    projector: str = "mlp2x_gelu"
    system_prompt: str = DEFAULT_SYSTEM


def build_projector(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """``mlp2x_gelu`` (Linear -> GELU -> Linear, LLaVA-1.5) or ``linear``."""
    if kind == "mlp2x_gelu":
        return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    raise QuartetError(f"unknown projector {kind!r}; choose 'mlp2x_gelu' or 'linear'")


@dataclass
class Generation:
    """Answers of one :meth:`FastVLM.generate` call with the time-to-first-token breakdown (seconds)."""

    texts: list[str]
    token_ids: list[list[int]]
    ttft_s: float
    timings: dict[str, float] = field(default_factory=dict)


class FastVLM(nn.Module):
    """Encoder + projector + causal LM with ``<image>`` splicing, training loss and KV-cached generation."""

    def __init__(self, cfg: VLMConfig, encoder: VisionEncoder, llm: nn.Module, tokenizer: Any):
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        self.llm = llm
        self.tokenizer = tokenizer
        self.image_token_id = ensure_image_token(tokenizer)
        self.projector = build_projector(cfg.projector, encoder.out_dim, self.hidden_size)

    # --- shapes ----------------------------------------------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        return int(self.llm.get_input_embeddings().weight.shape[1])

    @property
    def context_length(self) -> int:
        return int(getattr(self.llm.config, "max_position_embeddings", 1 << 30))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_image_tokens(self, resolution: int | None = None) -> int:
        return self.encoder.num_tokens(resolution or self.cfg.resolution)

    # --- inputs ----------------------------------------------------------------------------------------------
    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, 3, R, R)`` in [0, 1] -> ``(B, N, hidden)`` projected image tokens."""
        return self.projector(self.encoder(pixel_values))

    def tokenize_prompt(self, question: str) -> list[int]:
        return self.tokenizer(chat_prompt(question, self.cfg.system_prompt), add_special_tokens=False)["input_ids"]

    def build_inputs(self, input_ids: list[list[int]], image_embeds: torch.Tensor,
                     labels: list[list[int]] | None = None, pad_left: bool = False,
                     reserve: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Splice image tokens into each sequence at its ``<image>`` id; pad to a batch.

        Returns ``inputs_embeds (B, L, d)``, ``attention_mask (B, L)``, labels (image positions ``IGNORE``) and
        ``position_ids``. ``reserve`` tokens (to be generated) count against the LLM context."""
        emb_layer = self.llm.get_input_embeddings()
        n_img = image_embeds.shape[1]
        seqs, labs = [], []
        for i, ids in enumerate(input_ids):
            where = [j for j, t in enumerate(ids) if t == self.image_token_id]
            if len(where) != 1:
                raise QuartetError(f"prompt {i} has {len(where)} {IMAGE_TOKEN} placeholders; exactly one is supported")
            j = where[0]
            total = len(ids) - 1 + n_img + reserve
            if total > self.context_length:
                raise QuartetError(
                    f"prompt {i} is too long for the LLM context: {len(ids) - 1} text tokens + {n_img} image tokens"
                    + (f" + {reserve} new tokens" if reserve else "")
                    + f" = {total} > {self.context_length}; shorten the prompt or lower the resolution")
            t = torch.tensor(ids, device=image_embeds.device)
            e = emb_layer(t.clamp(max=emb_layer.num_embeddings - 1))
            seqs.append(torch.cat([e[:j], image_embeds[i].to(e.dtype), e[j + 1:]]))
            if labels is not None:
                lab = torch.tensor(labels[i], device=t.device)
                labs.append(torch.cat([lab[:j], torch.full((n_img,), IGNORE, device=t.device), lab[j + 1:]]))
        length = max(s.shape[0] for s in seqs)
        b, d = len(seqs), seqs[0].shape[1]
        emb = seqs[0].new_zeros(b, length, d)
        mask = torch.zeros(b, length, dtype=torch.long, device=emb.device)
        lab_out = torch.full((b, length), IGNORE, dtype=torch.long, device=emb.device) if labels is not None else None
        for i, s in enumerate(seqs):
            sl = slice(length - s.shape[0], length) if pad_left else slice(0, s.shape[0])
            emb[i, sl] = s
            mask[i, sl] = 1
            if lab_out is not None:
                lab_out[i, sl] = labs[i]
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        return emb, mask, lab_out, pos

    # --- training --------------------------------------------------------------------------------------------
    def forward(self, pixel_values: torch.Tensor, input_ids: list[list[int]], labels: list[list[int]],
                image_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Mean next-token cross-entropy over answer tokens (labels ``IGNORE`` elsewhere).

        ``image_embeds`` (encoder output, before the projector) skips the encoder, e.g. when it is frozen and its
        features are cached."""
        feats = self.encoder(pixel_values) if image_embeds is None else image_embeds
        emb, mask, lab, pos = self.build_inputs(input_ids, self.projector(feats), labels)
        out = self.llm(inputs_embeds=emb, attention_mask=mask, position_ids=pos, labels=lab, use_cache=False)
        return out.loss

    # --- generation ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, pixel_values: torch.Tensor, prompts: list[str], max_new_tokens: int = 32,
                 temperature: float = 0.0, generator: torch.Generator | None = None,
                 image_feats: torch.Tensor | None = None) -> Generation:
        """Batched generation with a KV cache (left padding); greedy at ``temperature`` 0.

        TTFT (seconds) covers encoder, projector, prefill and the first sampled token."""
        dev = self.device
        eos = {t for t in (self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<|endoftext|>"))
               if isinstance(t, int) and t >= 0}
        ids = [self.tokenize_prompt(p) for p in prompts]
        timings: dict[str, float] = {}
        synchronize(dev)
        t0 = time.perf_counter()
        with autocast(dev):
            feats = self.encoder(pixel_values.to(dev)) if image_feats is None else image_feats.to(dev)
            synchronize(dev)
            t1 = time.perf_counter()
            img = self.projector(feats)
            synchronize(dev)
            t2 = time.perf_counter()
            emb, mask, _, pos = self.build_inputs(ids, img, pad_left=True, reserve=max_new_tokens)
            out = self.llm(inputs_embeds=emb, attention_mask=mask, position_ids=pos, use_cache=True,
                           logits_to_keep=1)
            nxt = _sample(out.logits[:, -1].float(), temperature, generator)
            synchronize(dev)
        t3 = time.perf_counter()
        timings.update(encoder_s=t1 - t0, projector_s=t2 - t1, prefill_s=t3 - t2)
        gen = [nxt]
        done = torch.tensor([int(t) in eos for t in nxt.tolist()], device=dev)
        past = out.past_key_values
        for _ in range(max_new_tokens - 1):
            if bool(done.all()):
                break
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            pos = pos[:, -1:] + 1
            with autocast(dev):
                out = self.llm(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos,
                               past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = _sample(out.logits[:, -1].float(), temperature, generator)
            nxt = torch.where(done, torch.full_like(nxt, next(iter(eos), 0)), nxt)
            gen.append(nxt)
            done |= torch.tensor([int(t) in eos for t in nxt.tolist()], device=dev)
        synchronize(dev)
        timings["total_s"] = time.perf_counter() - t0
        toks = torch.stack(gen, 1).tolist()
        trimmed = []
        for row in toks:
            cut = next((k for k, t in enumerate(row) if t in eos), len(row))
            trimmed.append(row[:cut])
        texts = [self.tokenizer.decode(r, skip_special_tokens=True).strip() for r in trimmed]
        return Generation(texts=texts, token_ids=trimmed, ttft_s=t3 - t0, timings=timings)

    # --- persistence -----------------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``tokenizer/`` into ``folder`` (atomically per file)."""
        from safetensors.torch import save_model

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.encoder.fused:
            raise QuartetError("save the train-time (unfused) model; reparameterise after loading for inference")
        tmp = folder / "model.safetensors.tmp"
        save_model(self, str(tmp))
        tmp.replace(folder / "model.safetensors")
        self.tokenizer.save_pretrained(str(folder / "tokenizer"))
        meta = {"vlm": to_dict(self.cfg), "llm_config": self.llm.config.to_dict(),
                "encoder_dim": self.encoder.out_dim, "llm_hidden": self.hidden_size}
        atomic_write_text(folder / "config.json", json.dumps(meta, indent=2, default=str))
        return folder


def _sample(logits: torch.Tensor, temperature: float, generator: torch.Generator | None) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, -1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _build_llm(cfg: VLMConfig, tokenizer: Any, llm_config: dict[str, Any] | None) -> nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    if llm_config is not None:
        conf = dict(llm_config)
        conf.pop("transformers_version", None)
        mtype = conf.pop("model_type", "qwen2")
        return AutoModelForCausalLM.from_config(AutoConfig.for_model(mtype, **conf))
    if cfg.llm_path:
        p = Path(cfg.llm_path)
        if not (p / "config.json").is_file():
            raise QuartetError(f"LLM directory {p} has no config.json; give a local Hugging Face model folder")
        try:
            return AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True, dtype=torch.float32)
        except (OSError, ValueError) as e:
            raise QuartetError(f"cannot load the causal LM from {p}: {e}") from e
    vocab = len(tokenizer)
    return AutoModelForCausalLM.from_config(qwen2_config(cfg.llm, vocab_size=vocab))


def build_vlm(cfg: VLMConfig, tokenizer: Any = None, llm_config: dict[str, Any] | None = None) -> FastVLM:
    """A FastVLM from a config: random-init LLM preset (needs ``tokenizer``) or a released LLM from ``llm_path``."""
    from quartet.vlm.text import load_tokenizer

    if tokenizer is None:
        if not cfg.llm_path:
            raise QuartetError("a tokenizer is needed for a preset LLM (build one with quartet vlm build-data)")
        tokenizer = load_tokenizer(cfg.llm_path)
    encoder = VisionEncoder(cfg.encoder, resolution=cfg.resolution)
    if cfg.encoder_weights:
        encoder.load_weights(cfg.encoder_weights)
    llm = _build_llm(cfg, tokenizer, llm_config)
    return FastVLM(cfg, encoder, llm, tokenizer).eval()


def load_vlm(folder: str | Path, device: torch.device | str | None = None, fused: bool = False,
             resolution: int | None = None) -> FastVLM:
    """Load a checkpoint folder written by :meth:`FastVLM.save`; encoder/LLM widths are checked before loading."""
    from safetensors import safe_open
    from safetensors.torch import load_model

    from quartet.vlm.text import load_tokenizer

    folder = Path(folder)
    cfg_path, w_path = folder / "config.json", folder / "model.safetensors"
    if not cfg_path.is_file() or not w_path.is_file():
        raise QuartetError(f"{folder} is not a VLM checkpoint (needs config.json and model.safetensors)")
    meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg = from_dict(VLMConfig, meta["vlm"])
    if resolution:
        cfg.resolution = int(resolution)
    cfg.encoder_weights = None
    cfg.llm_path = None
    tok = load_tokenizer(str(folder / "tokenizer"))
    model = build_vlm(cfg, tok, llm_config=meta["llm_config"])
    with safe_open(str(w_path), framework="pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    proj0 = "projector.0.weight" if cfg.projector == "mlp2x_gelu" else "projector.weight"
    if proj0 in shapes:
        d_llm, d_enc = shapes[proj0]
        if d_enc != model.encoder.out_dim or d_llm != model.hidden_size:
            raise QuartetError(
                f"checkpoint {folder}: projector maps {d_enc} -> {d_llm} but encoder {cfg.encoder!r} gives "
                f"{model.encoder.out_dim}-d tokens and the LLM is {model.hidden_size}-d; the encoder/LLM do not match")
    own = model.state_dict()
    bad = [k for k, s in shapes.items() if k in own and tuple(own[k].shape) != s]
    if bad:
        raise QuartetError(f"checkpoint {folder}: {len(bad)} tensors do not match the configured model "
                           f"(first: {bad[0]} {shapes[bad[0]]} vs {tuple(own[bad[0]].shape)})")
    missing, _ = load_model(model, str(w_path), strict=False)
    if missing:
        raise QuartetError(f"checkpoint {folder} lacks {len(missing)} tensors (first: {sorted(missing)[0]})")
    model.eval()
    if fused:
        model.encoder.reparameterize()
    if device is not None:
        model.to(device)
    return model
