"""Language side of the VLM: Qwen2-family LLM presets, an offline tokenizer, and the Qwen2 chat template.

The LLM is any Hugging Face causal LM. Presets are Qwen2 shapes with random weights: ``qwen2_tiny`` (tests and the
demo), and ``qwen2_0.5b`` / ``qwen2_1.5b`` (the published Qwen2 shapes, used for TTFT timing only). Real released
weights and tokenizers load from a local directory (``llm_path``); nothing is fetched from a hub.

Without a released tokenizer, :func:`build_tokenizer` trains a small byte-level BPE on the task's own text with
``tokenizers`` (digits split one per token, as Qwen2 does) and adds the Qwen2 special tokens plus ``<image>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from quartet.core.errors import QuartetError

IMAGE_TOKEN = "<image>"
IM_START, IM_END, EOT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
DEFAULT_SYSTEM = "You are a helpful assistant."

# Published Qwen2 shapes (config.json of Qwen/Qwen2-0.5B and -1.5B), random weights here.
LLM_PRESETS: dict[str, dict[str, Any]] = {
    "qwen2_tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True),
    "qwen2_small": dict(hidden_size=128, intermediate_size=352, num_hidden_layers=4, num_attention_heads=4,
                        num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True),
    "qwen2_0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                       num_key_value_heads=2, max_position_embeddings=32768, tie_word_embeddings=True,
                       vocab_size=151936, rope_theta=1_000_000.0),
    "qwen2_1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                       num_key_value_heads=2, max_position_embeddings=32768, tie_word_embeddings=True,
                       vocab_size=151936, rope_theta=1_000_000.0),
}


def qwen2_config(preset: str, vocab_size: int | None = None, **overrides: Any) -> Any:
    """A ``transformers.Qwen2Config`` for ``preset`` (``vocab_size`` overrides the preset's when given)."""
    from transformers import Qwen2Config

    if preset not in LLM_PRESETS:
        raise QuartetError(f"unknown LLM preset {preset!r}; choose from {sorted(LLM_PRESETS)} or pass a local path")
    kw = dict(LLM_PRESETS[preset])
    if vocab_size is not None:
        kw["vocab_size"] = vocab_size
    kw.update(overrides)
    return Qwen2Config(**kw)


def chat_prompt(question: str, system: str = DEFAULT_SYSTEM, image_token: str = IMAGE_TOKEN) -> str:
    """The Qwen2 chat template with one image; ``<image>`` is prepended (on its own line) if ``question`` lacks it."""
    if image_token not in question:
        question = f"{image_token}\n{question}"
    return (f"{IM_START}system\n{system}{IM_END}\n{IM_START}user\n{question}{IM_END}\n"
            f"{IM_START}assistant\n")


def build_tokenizer(texts: Iterable[str], vocab_size: int = 384) -> Any:
    """A ``PreTrainedTokenizerFast`` (byte-level BPE trained on ``texts``) with Qwen2 special tokens and ``<image>``.

    Every byte is in the alphabet, so any text encodes; ``eos`` is ``<|im_end|>`` and ``pad`` ``<|endoftext|>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [EOT, IM_START, IM_END, IMAGE_TOKEN]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=IM_END, pad_token=EOT,
                                   additional_special_tokens=[IM_START, IMAGE_TOKEN])
    return fast


def ensure_image_token(tokenizer: Any, image_token: str = IMAGE_TOKEN) -> int:
    """Add ``<image>`` as a special token if the tokenizer lacks it (real Qwen2 tokenizers do); return its id.

    The id may exceed the LLM's embedding table: it is never embedded, only replaced by image tokens."""
    ids = tokenizer.convert_tokens_to_ids(image_token)
    if ids is None or ids == tokenizer.unk_token_id or (isinstance(ids, int) and ids < 0):
        tokenizer.add_special_tokens({"additional_special_tokens": [image_token]})
        ids = tokenizer.convert_tokens_to_ids(image_token)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return int(ids)


def load_tokenizer(path: str) -> Any:
    """A tokenizer from a local directory (``AutoTokenizer``, offline), with ``<image>`` ensured."""
    from pathlib import Path

    from transformers import AutoTokenizer

    if not Path(path).is_dir():
        raise QuartetError(f"tokenizer directory {path} not found")
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as e:
        raise QuartetError(f"cannot load a tokenizer from {path}: {e}") from e
    ensure_image_token(tok)
    return tok
