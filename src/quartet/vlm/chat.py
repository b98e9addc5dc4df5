"""``quartet vlm chat --ckpt DIR --image IMG --prompt TEXT``: answer a question about an image, print the TTFT.

Python API::

    from quartet.vlm.chat import Chat
    bot = Chat("runs/.../model")              # fused encoder, device chosen automatically (CUDA > MPS > CPU)
    answer, gen = bot.ask("photo.jpg", "What number is written in the image?")
    gen.ttft_s, gen.timings                   # seconds: encoder / projector / prefill split

A prompt without ``<image>`` gets it prepended; a prompt longer than the LLM context is refused with the counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from quartet.core.device import pick_device
from quartet.vlm.model import Generation, load_vlm
from quartet.vlm.preprocess import preprocess_batch


class Chat:
    """A loaded, reparameterised VLM ready to answer questions about images."""

    def __init__(self, ckpt: str | Path, device: str | None = None, resolution: int | None = None,
                 fused: bool = True):
        self.device = pick_device(device)
        self.model = load_vlm(ckpt, device=self.device, fused=fused, resolution=resolution)

    @property
    def resolution(self) -> int:
        return self.model.cfg.resolution

    def ask(self, image: Any, prompt: str, max_new_tokens: int = 64, temperature: float = 0.0,
            seed: int = 0) -> tuple[str, Generation]:
        """Answer ``prompt`` about ``image`` (a path, PIL image or array)."""
        return self.ask_batch([image], [prompt], max_new_tokens, temperature, seed)[0][0], self._last

    def ask_batch(self, images: list, prompts: list[str], max_new_tokens: int = 64, temperature: float = 0.0,
                  seed: int = 0) -> tuple[list[str], Generation]:
        """Batched answers (one image per prompt), KV-cached."""
        pix = preprocess_batch(images, self.resolution).to(self.device)
        gen = torch.Generator(device=self.device).manual_seed(seed) if temperature > 0 else None
        out = self.model.generate(pix, prompts, max_new_tokens=max_new_tokens, temperature=temperature,
                                  generator=gen)
        self._last = out
        return out.texts, out


@dataclass
class ChatConfig:
    """Ask a trained VLM about one image."""

    ckpt: str = ""
    image: str = ""
    prompt: str = "Describe the image."
    resolution: int | None = None  # default: the checkpoint's
    max_new_tokens: int = 64
    temperature: float = 0.0
    device: str = "auto"
    threads: int | None = None
    seed: int = 0


def main(argv: list[str]) -> int:
    from quartet.core.config import parse_cli
    from quartet.core.device import reuse_freed_cpu_memory
    from quartet.core.errors import QuartetError

    cfg = parse_cli(ChatConfig, argv, prog="quartet vlm chat")
    if not cfg.ckpt or not cfg.image:
        raise QuartetError("--ckpt (a checkpoint folder) and --image (an image file) are required")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    reuse_freed_cpu_memory()  # CPU: no page faults on the encoder's large activations after the warm-up
    bot = Chat(cfg.ckpt, device=cfg.device, resolution=cfg.resolution)
    bot.ask(cfg.image, cfg.prompt, max_new_tokens=1)  # warm-up so the printed TTFT is steady-state
    answer, gen = bot.ask(cfg.image, cfg.prompt, cfg.max_new_tokens, cfg.temperature, cfg.seed)
    t = gen.timings
    print(answer)
    print(f"TTFT {1000 * gen.ttft_s:.1f} ms (encoder {1000 * t['encoder_s']:.1f} + projector "
          f"{1000 * t['projector_s']:.1f} + prefill {1000 * t['prefill_s']:.1f}) at {bot.resolution} px, "
          f"{bot.model.num_image_tokens()} image tokens, device {bot.device}")
    return 0
