"""VLM wiring: <image> splicing, chat template, loss masking, KV-cached batched generation, checkpoints, errors."""

from __future__ import annotations

import json

import pytest
import torch

from quartet.core.errors import QuartetError
from quartet.vlm.model import IGNORE, VLMConfig, build_vlm, load_vlm
from quartet.vlm.text import DEFAULT_SYSTEM, IM_END, build_tokenizer, chat_prompt
from quartet.vlm.train import encode_example

TEXTS = ["What number is written in the image? 12 34 56 78 90", "Read the number in the image.",
         f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\n<image>\nhello<|im_end|>\n"]


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(TEXTS, vocab_size=300)


@pytest.fixture(scope="module")
def vlm(tok):
    torch.manual_seed(0)
    return build_vlm(VLMConfig(encoder="fastvithd_tiny", resolution=64, llm="qwen2_tiny"), tok).eval()


def test_chat_template_matches_qwen2_and_prepends_image() -> None:
    p = chat_prompt("What is it?")
    assert p == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\n"
                 "What is it?<|im_end|>\n<|im_start|>assistant\n")
    assert chat_prompt("Look: <image> what?").count("<image>") == 1


def test_tokenizer_specials_and_digits(tok) -> None:
    for s in ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<image>"):
        ids = tok(s, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, s
    assert tok.eos_token == IM_END
    assert len(tok("1234", add_special_tokens=False)["input_ids"]) == 4  # one token per digit
    assert tok.decode(tok("héllo wörld 42", add_special_tokens=False)["input_ids"]) == "héllo wörld 42"


def test_image_tokens_spliced_at_placeholder(vlm) -> None:
    ids = vlm.tokenize_prompt("What?")
    n_img = vlm.num_image_tokens(64)
    img = torch.randn(1, n_img, vlm.hidden_size)
    emb, mask, _, pos = vlm.build_inputs([ids], img)
    j = ids.index(vlm.image_token_id)
    assert emb.shape[1] == len(ids) - 1 + n_img
    assert torch.equal(emb[0, j:j + n_img], img[0])
    text_emb = vlm.llm.get_input_embeddings()(torch.tensor(ids))
    assert torch.equal(emb[0, j + n_img:], text_emb[j + 1:])
    assert mask.all() and pos[0].tolist() == list(range(emb.shape[1]))


def test_loss_only_on_answer_tokens(vlm) -> None:
    ids, labels = encode_example(vlm, "What number?", "42")
    n_prompt = len(vlm.tokenize_prompt("What number?"))
    assert labels[:n_prompt] == [IGNORE] * n_prompt and IGNORE not in labels[n_prompt:]
    assert labels[-1] == vlm.tokenizer.convert_tokens_to_ids(IM_END)
    img = torch.randn(1, vlm.num_image_tokens(64), vlm.hidden_size)
    _, _, lab, _ = vlm.build_inputs([ids], img, [labels])
    assert (lab != IGNORE).sum().item() == len(labels) - n_prompt
    pix = torch.rand(1, 3, 64, 64)
    loss = vlm(pix, [ids], [labels])
    assert torch.isfinite(loss) and loss.item() > 0
    # changing the prompt-only labels region does not change which positions count
    loss.backward()
    assert vlm.projector[0].weight.grad is not None
    vlm.zero_grad(set_to_none=True)


def test_batched_generation_matches_single(vlm) -> None:
    pix = torch.rand(2, 3, 64, 64)
    prompts = ["What number is written in the image?", "hello"]
    batch = vlm.generate(pix, prompts, max_new_tokens=6)
    for i in range(2):
        single = vlm.generate(pix[i:i + 1], prompts[i:i + 1], max_new_tokens=6)
        assert single.token_ids[0] == batch.token_ids[i]
    assert batch.ttft_s > 0 and set(batch.timings) >= {"encoder_s", "projector_s", "prefill_s"}


def test_kv_cache_greedy_equals_full_recompute(vlm) -> None:
    pix = torch.rand(1, 3, 64, 64)
    out = vlm.generate(pix, ["hello"], max_new_tokens=4)
    ids = vlm.tokenize_prompt("hello")
    img = vlm.encode_images(pix)
    seq = list(ids)
    for t in out.token_ids[0]:
        emb, mask, _, pos = vlm.build_inputs([seq], img)
        with torch.no_grad():
            logits = vlm.llm(inputs_embeds=emb, attention_mask=mask, position_ids=pos).logits
        assert int(logits[0, -1].argmax()) == t
        seq.append(t)


def test_prompt_longer_than_context_is_clear_error(vlm) -> None:
    long = "12 " * 400
    with pytest.raises(QuartetError, match=r"too long for the LLM context: \d+ text tokens \+ 1 image tokens"):
        vlm.generate(torch.rand(1, 3, 64, 64), [long], max_new_tokens=4)


def test_two_placeholders_rejected(vlm) -> None:
    ids = vlm.tokenize_prompt("<image> and <image>")
    with pytest.raises(QuartetError, match="placeholders"):
        vlm.build_inputs([ids], torch.randn(1, 1, vlm.hidden_size))


def test_save_load_roundtrip(vlm, tmp_path) -> None:
    vlm.save(tmp_path / "ck")
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert meta["encoder_dim"] == 512 and meta["llm_hidden"] == 64
    back = load_vlm(tmp_path / "ck")
    pix = torch.rand(1, 3, 64, 64)
    a = vlm.generate(pix, ["hello"], max_new_tokens=5)
    b = back.generate(pix, ["hello"], max_new_tokens=5)
    assert a.token_ids == b.token_ids
    fused = load_vlm(tmp_path / "ck", fused=True)
    with torch.no_grad():
        assert (fused.encode_images(pix) - vlm.encode_images(pix)).abs().max() < 1e-4


def test_mismatched_encoder_dims_is_clear_error(vlm, tmp_path) -> None:
    vlm.save(tmp_path / "ck")
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    meta["vlm"]["encoder"] = "fastvithd_s32_tiny"  # 256-d tokens, the projector expects 512
    (tmp_path / "ck" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(QuartetError, match="projector maps 512 -> 64 but encoder 'fastvithd_s32_tiny' gives 256"):
        load_vlm(tmp_path / "ck")


def test_real_weights_from_local_directory(tok, tmp_path) -> None:
    # A "released" HF causal LM + tokenizer saved to a folder loads through llm_path, offline.
    from transformers import AutoModelForCausalLM

    from quartet.vlm.text import qwen2_config

    torch.manual_seed(1)
    llm = AutoModelForCausalLM.from_config(qwen2_config("qwen2_tiny", vocab_size=len(tok)))
    llm.save_pretrained(tmp_path / "qwen")
    tok.save_pretrained(tmp_path / "qwen")
    vlm = build_vlm(VLMConfig(encoder="fastvithd_tiny", resolution=64, llm_path=str(tmp_path / "qwen")))
    w = llm.get_input_embeddings().weight
    assert torch.equal(vlm.llm.get_input_embeddings().weight, w)
    assert vlm.projector[0].weight.shape == (64, 512)
    out = vlm.generate(torch.rand(1, 3, 64, 64), ["hello"], max_new_tokens=3)
    assert len(out.token_ids[0]) <= 3
    with pytest.raises(QuartetError, match="no config.json"):
        build_vlm(VLMConfig(llm_path=str(tmp_path / "nothing")), tok)


def test_tokenizer_without_image_token_gets_one(tmp_path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from quartet.vlm.text import ensure_image_token

    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel()
    t.train_from_iterator(["hello world"], trainers.BpeTrainer(vocab_size=280, special_tokens=["<|im_end|>"],
                                                               show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=t, eos_token="<|im_end|>")
    i = ensure_image_token(fast)
    assert fast.convert_tokens_to_ids("<image>") == i and fast.pad_token is not None
