"""A Llama-style decoder (RoPE, SwiGLU, RMSNorm, PyTorch SDPA) whose weights and config are Hugging Face
``LlamaForCausalLM``'s, so a checkpoint saved by :func:`save_hf` loads in ``transformers`` unchanged (tested: same
logits). Document masking: when a batch carries ``segments`` (a document id per position), attention is causal AND
within the same document (a block-diagonal boolean mask for SDPA) and RoPE positions restart at each document. On CUDA
with ``flash-attn`` installed the same batches run through ``flash_attn_varlen_func`` instead (no dense mask).

Cost model that matters for Dataset Decomposition: per token and layer, the projections and MLP cost ~24·d² FLOPs
(forward) and attention ~4·L·d at sequence length L, so attention dominates once L > 6·d; with a dense mask SDPA pays
the full L² even when documents are short (what DD avoids by construction).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from quartet.core.errors import QuartetError


@dataclass
class ModelConfig:
    """Llama hyper-parameters (names follow litgpt; :meth:`to_hf` gives the ``LlamaConfig``)."""

    vocab_size: int = 8192
    dim: int = 128
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int | None = None
    ffn_dim: int | None = None
    """SwiGLU hidden size; default 8/3·dim rounded up to a multiple of 32"""
    max_seq_len: int = 1024
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def hidden(self) -> int:
        return self.ffn_dim or 32 * math.ceil(8 * self.dim / 3 / 32)

    def to_hf(self):
        from transformers import LlamaConfig

        return LlamaConfig(vocab_size=self.vocab_size, hidden_size=self.dim, intermediate_size=self.hidden,
                           num_hidden_layers=self.n_layers, num_attention_heads=self.n_heads,
                           num_key_value_heads=self.kv_heads, max_position_embeddings=self.max_seq_len,
                           rms_norm_eps=self.norm_eps, rope_theta=self.rope_theta, tie_word_embeddings=False,
                           head_dim=self.head_dim, architectures=["LlamaForCausalLM"])


PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(dim=64, n_layers=2, n_heads=2),
    "narrow": ModelConfig(dim=64, n_layers=4, n_heads=2),
    "small": ModelConfig(dim=128, n_layers=2, n_heads=4),
    "base": ModelConfig(dim=256, n_layers=4, n_heads=4),
}
"""CPU-sized presets; vocab and context are set from the data. ``narrow`` (d=64, 4 layers) is the one used for the
DD-vs-C&C comparisons: with a 2,048 vocabulary, attention is ~40% of its step cost at length 1024, a share
comparable to the paper's 8k-context 1B models, whereas at d=128 with an 8k vocabulary the output layer dominates and
no sequence-length method can change the cost much."""


def rope_cache(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin ``[B, L, head_dim]`` for integer ``positions`` ``[B, L]`` (Llama's half-split layout)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    f = positions.float()[..., None] * inv
    emb = torch.cat([f, f], dim=-1)
    return emb.cos(), emb.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def segment_positions(segments: torch.Tensor) -> torch.Tensor:
    """Position of each token inside its (contiguous) segment: restarts at 0 where the segment id changes."""
    B, L = segments.shape
    ar = torch.arange(L, device=segments.device).expand(B, L)
    start = torch.ones_like(segments, dtype=torch.bool)
    start[:, 1:] = segments[:, 1:] != segments[:, :-1]
    first = torch.where(start, ar, torch.zeros_like(ar)).cummax(dim=1).values
    return ar - first


def _flash_available(x: torch.Tensor) -> bool:
    if x.device.type != "cuda":
        return False
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return True


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


class Attention(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.c = c
        self.q_proj = nn.Linear(c.dim, c.n_heads * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.dim, c.kv_heads * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.dim, c.kv_heads * c.head_dim, bias=False)
        self.o_proj = nn.Linear(c.n_heads * c.head_dim, c.dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                segments: torch.Tensor | None) -> torch.Tensor:
        B, L, _ = x.shape
        c = self.c
        q = self.q_proj(x).view(B, L, c.n_heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, L, c.kv_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, L, c.kv_heads, c.head_dim).transpose(1, 2)
        q, k = _rotate(q, cos[:, None], sin[:, None]), _rotate(k, cos[:, None], sin[:, None])
        if segments is not None and _flash_available(x):
            return self.o_proj(_flash_varlen(q, k, v, segments).reshape(B, L, -1))
        if c.kv_heads != c.n_heads:
            rep = c.n_heads // c.kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(y.transpose(1, 2).reshape(B, L, -1))


def _flash_varlen(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """Document-masked attention with FlashAttention varlen (CUDA): segments -> cu_seqlens, no dense mask."""
    from flash_attn import flash_attn_varlen_func

    B, H, L, D = q.shape
    seg = segments.reshape(-1)
    row = torch.arange(B, device=seg.device).repeat_interleave(L)
    new = torch.ones_like(seg, dtype=torch.bool)
    new[1:] = (seg[1:] != seg[:-1]) | (row[1:] != row[:-1])
    starts = torch.nonzero(new).flatten()
    cu = torch.cat([starts, torch.tensor([B * L], device=seg.device)]).to(torch.int32)
    maxlen = int((cu[1:] - cu[:-1]).max())

    def flat(t: torch.Tensor) -> torch.Tensor:
        return t.transpose(1, 2).reshape(B * L, t.shape[1], D).to(torch.bfloat16)

    out = flash_attn_varlen_func(flat(q), flat(k), flat(v), cu, cu, maxlen, maxlen, causal=True)
    return out.reshape(B, L, H, D).to(q.dtype)


class MLP(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(c.dim, c.hidden, bias=False)
        self.up_proj = nn.Linear(c.dim, c.hidden, bias=False)
        self.down_proj = nn.Linear(c.hidden, c.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c.dim, c.norm_eps)
        self.post_attention_layernorm = RMSNorm(c.dim, c.norm_eps)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                segments: torch.Tensor | None) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, segments)
        return x + self.mlp(self.post_attention_layernorm(x))


class _Body(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.dim)
        self.layers = nn.ModuleList([Block(c) for _ in range(c.n_layers)])
        self.norm = RMSNorm(c.dim, c.norm_eps)


class LlamaLM(nn.Module):
    """Decoder-only LM; parameter names equal ``LlamaForCausalLM``'s (``model.layers.0.self_attn.q_proj.weight``)."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        if c.dim % c.n_heads or c.n_heads % c.kv_heads or c.head_dim % 2:
            raise QuartetError(f"model dims invalid: dim {c.dim}, heads {c.n_heads}, kv heads {c.kv_heads}")
        self.config = c
        self.model = _Body(c)
        self.lm_head = nn.Linear(c.dim, c.vocab_size, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, tokens: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, L, vocab]``; ``segments`` ``[B, L]`` switches on document masking."""
        B, L = tokens.shape
        if segments is None:
            pos = torch.arange(L, device=tokens.device).expand(B, L)
            mask = None
        else:
            pos = segment_positions(segments)
            causal = torch.ones(L, L, dtype=torch.bool, device=tokens.device).tril()
            mask = (segments[:, None, :, None] == segments[:, None, None, :]) & causal
        cos, sin = rope_cache(pos, self.config.head_dim, self.config.rope_theta)
        x = self.model.embed_tokens(tokens)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask, segments)
        return self.lm_head(self.model.norm(x))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def lm_loss(logits: torch.Tensor, tokens: torch.Tensor, segments: torch.Tensor | None = None,
            loss_mask: torch.Tensor | None = None, z_loss: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token cross-entropy (mean over valid targets) plus ``z_loss · mean(logsumexp²)`` (PaLM's z-loss).

    A target is valid when it is not padding and, with document masking, lies in the same document as its input.
    Returns ``(loss to optimise, cross-entropy alone)``."""
    lg = logits[:, :-1].float()
    tgt = tokens[:, 1:]
    valid = torch.ones_like(tgt, dtype=torch.bool)
    if segments is not None:
        valid &= segments[:, 1:] == segments[:, :-1]
    if loss_mask is not None:
        valid &= loss_mask[:, 1:]
    flat = lg.reshape(-1, lg.shape[-1])
    v = valid.reshape(-1)
    ce_all = F.cross_entropy(flat, tgt.reshape(-1), reduction="none")
    n = v.sum().clamp(min=1)
    ce = (ce_all * v).sum() / n
    loss = ce
    if z_loss:
        lse = torch.logsumexp(flat, dim=-1)
        loss = loss + z_loss * ((lse ** 2) * v).sum() / n
    return loss, ce.detach()


def save_hf(model: LlamaLM, folder: str | Path) -> Path:
    """Write ``config.json`` + ``model.safetensors`` that ``LlamaForCausalLM.from_pretrained(folder)`` loads."""
    from safetensors.torch import save_file

    from quartet.core.io import atomic_path, atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hf = model.config.to_hf().to_dict()
    atomic_write_text(folder / "config.json", json.dumps(hf, indent=2))
    atomic_write_text(folder / "quartet_model.json", json.dumps(asdict(model.config), indent=2))
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(sd, str(tmp), metadata={"format": "pt"})
    return folder


def load_hf(folder: str | Path, device: str | torch.device = "cpu") -> LlamaLM:
    """Load a model saved by :func:`save_hf` (safetensors, no pickle)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path = folder / "quartet_model.json"
    if not cfg_path.is_file() or not (folder / "model.safetensors").is_file():
        raise QuartetError(f"{folder} is not a saved model (needs quartet_model.json and model.safetensors)")
    c = ModelConfig(**json.loads(cfg_path.read_text()))
    m = LlamaLM(c)
    m.load_state_dict(load_file(str(folder / "model.safetensors"), device=str(device)))
    return m.to(device)
