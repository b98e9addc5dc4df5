"""Caption generators: nucleus sampling semantics, CoCa and Hugging Face adapters from local folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from reinforce_fixtures import tiny_captioner

from quartet.clip.captioners import (
    CoCaCaptioner,
    HFCaptioner,
    clean_caption,
    sample_top_p,
    tiny_coca_config,
    top_p_filter,
)
from quartet.clip.teachers import open_clip_from_config, save_open_clip_dir
from quartet.core.errors import QuartetError


def _images(n: int = 2) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)) for _ in range(n)]


def test_clean_caption_cuts_at_the_first_period() -> None:
    assert clean_caption("  a cat  on a mat. and more. ") == "a cat on a mat"
    assert clean_caption(". nothing") == ""


@pytest.mark.parametrize("fast_k", [1, 5])
def test_sampler_draws_from_the_reference_nucleus(fast_k: int) -> None:
    """Both paths (top-k cut and bisection) against sort-based filtering + softmax, the reference semantics."""
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0, -1.0, -1.5]])
    ref = top_p_filter(logits, 0.9).softmax(-1)[0]
    assert ref[3:].sum() == 0 and ref[:3].sum() == pytest.approx(1.0)
    g = torch.Generator().manual_seed(0)
    draws = sample_top_p(logits.repeat(20000, 1), 0.9, g, fast_k=fast_k)
    freq = torch.bincount(draws, minlength=6).float() / 20000
    assert torch.allclose(freq, ref, atol=0.015)


def test_coca_captions_are_n_per_image_deterministic_and_seeded() -> None:
    cap = tiny_captioner()
    a = cap.generate(_images(2), 3, seed=5)
    assert len(a) == 2 and all(len(c) == 3 for c in a)
    assert all(isinstance(t, str) and "." not in t for c in a for t in c)
    assert cap.generate(_images(2), 3, seed=5) == a
    assert cap.generate(_images(2), 0) == [[], []]


def test_coca_caption_seed_drives_sampling(monkeypatch: pytest.MonkeyPatch) -> None:
    # A random-init decoder can be peaked enough that top-p keeps one token whatever the seed; with uniform
    # next-token logits the seed alone decides the captions.
    import quartet.clip.captioners as captioners

    cap = tiny_captioner()
    monkeypatch.setattr(captioners, "_next_token_logits",
                        lambda model, image_embs, tokens: torch.zeros(tokens.shape[0], cap.eot + 1))
    assert cap.generate(_images(2), 3, seed=6) != cap.generate(_images(2), 3, seed=5)
    assert cap.generate(_images(2), 3, seed=6) == cap.generate(_images(2), 3, seed=6)


def test_random_init_coca_has_an_initialised_decoder_projection() -> None:
    # open_clip leaves the multimodal decoder's text_projection as torch.empty: it held NaN after some allocations
    # (e.g. a tokenizer built earlier in the process), and every caption of a random-init CoCa came out the same.
    import open_clip

    from quartet.clip.captioners import tiny_coca_config
    from quartet.clip.models import create_model

    open_clip.SimpleTokenizer(context_length=16)(["a"])
    for model in (open_clip_from_config(tiny_coca_config(image_size=32)), create_model("CoCa-micro").model):
        proj = model.text_decoder.text_projection
        assert torch.isfinite(proj).all()
        assert abs(proj.std().item() - proj.shape[0] ** -0.5) < 0.1 * proj.shape[0] ** -0.5
    cap = tiny_captioner()
    caps = cap.generate(_images(4), 2, seed=0)
    assert len(caps) == 4 and all(len(c) == 2 for c in caps)


def test_coca_refuses_non_finite_logits(monkeypatch: pytest.MonkeyPatch) -> None:
    import quartet.clip.captioners as captioners

    cap = tiny_captioner()
    monkeypatch.setattr(captioners, "_next_token_logits",
                        lambda model, image_embs, tokens: torch.full((tokens.shape[0], cap.eot + 1), float("nan")))
    with pytest.raises(QuartetError, match="non-finite logits at token 0"):
        cap.generate(_images(1), 1)


def test_coca_from_local_dir_matches_in_memory(tmp_path: Path) -> None:
    torch.manual_seed(4)
    cfg = tiny_coca_config(image_size=32)
    model = open_clip_from_config(cfg)
    save_open_clip_dir(model, tmp_path / "coca", cfg)
    mem = CoCaCaptioner.from_model(model, 32, max_tokens=5)
    disk = CoCaCaptioner.from_checkpoint(f"local-dir:{tmp_path / 'coca'}", max_tokens=5)
    assert disk.generate(_images(1), 2, seed=1) == mem.generate(_images(1), 2, seed=1)


def test_coca_adapter_refuses_a_plain_clip() -> None:
    from quartet.clip.teachers import tiny_clip_config

    with pytest.raises(QuartetError, match="not an open_clip CoCa"):
        CoCaCaptioner.from_model(open_clip_from_config(tiny_clip_config()), 32)


def _save_tiny_blip(d: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        BertTokenizerFast,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "a", "red", "cat", "on", "the", "mat", ".",
             "blue", "big"]
    tk = Tokenizer(models.WordPiece({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.decoder = decoders.WordPiece()
    tok = BertTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]")
    tok.add_special_tokens({"bos_token": "[DEC]"})
    proc = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tok)
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    cfg = BlipConfig(vision_config={**small, "image_size": 32, "patch_size": 8},
                     text_config={**small, "vocab_size": len(words), "encoder_hidden_size": 32, "bos_token_id": 5,
                                  "sep_token_id": 3, "pad_token_id": 0, "eos_token_id": 3}, projection_dim=32)
    torch.manual_seed(0)
    BlipForConditionalGeneration(cfg).save_pretrained(d)
    proc.save_pretrained(d)
    return d


def test_hf_captioner_loads_a_local_folder_and_samples(tmp_path: Path) -> None:
    cap = HFCaptioner.from_pretrained(_save_tiny_blip(tmp_path / "blip"), max_new_tokens=6)
    out = cap.generate(_images(2), 3, seed=0)
    assert len(out) == 2 and all(len(c) == 3 for c in out)
    assert all("." not in t and "[DEC]" not in t for c in out for t in c)
    assert any(t for c in out for t in c)  # the tiny vocabulary decodes to words
    assert cap.generate(_images(2), 3, seed=0) == out
    with pytest.raises(QuartetError, match="config.json"):
        HFCaptioner.from_pretrained(tmp_path)
