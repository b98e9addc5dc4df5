import torch

from quartet.lm.model import LlamaLM, ModelConfig, lm_loss, load_hf, save_hf, segment_positions


def _model() -> LlamaLM:
    torch.manual_seed(0)
    return LlamaLM(ModelConfig(vocab_size=300, dim=32, n_layers=2, n_heads=2, max_seq_len=64)).eval()


def test_checkpoint_loads_in_transformers_with_same_logits(tmp_path) -> None:
    from transformers import LlamaForCausalLM

    m = _model()
    save_hf(m, tmp_path)
    hf = LlamaForCausalLM.from_pretrained(tmp_path).eval()
    x = torch.randint(0, 300, (2, 24))
    with torch.no_grad():
        assert torch.allclose(m(x), hf(x).logits, atol=1e-5)
        assert torch.equal(load_hf(tmp_path)(x), m(x))


def test_gqa_matches_transformers(tmp_path) -> None:
    from transformers import LlamaForCausalLM

    torch.manual_seed(1)
    m = LlamaLM(ModelConfig(vocab_size=100, dim=32, n_layers=1, n_heads=4, n_kv_heads=2)).eval()
    save_hf(m, tmp_path)
    x = torch.randint(0, 100, (1, 10))
    with torch.no_grad():
        assert torch.allclose(m(x), LlamaForCausalLM.from_pretrained(tmp_path).eval()(x).logits, atol=1e-5)


def test_document_mask_equals_separate_sequences() -> None:
    m = _model()
    x = torch.randint(0, 300, (2, 20))
    seg = torch.tensor([[0] * 7 + [1] * 13, [4] * 12 + [9] * 8])
    with torch.no_grad():
        y = m(x, seg)
        assert torch.allclose(y[0, :7], m(x[:1, :7])[0], atol=1e-5)
        assert torch.allclose(y[0, 7:], m(x[:1, 7:])[0], atol=1e-5)
        assert torch.allclose(y[1, 12:], m(x[1:, 12:])[0], atol=1e-5)
        assert not torch.allclose(y[0, 7:], m(x[:1])[0, 7:], atol=1e-3)  # without the mask it differs
    assert segment_positions(seg)[0].tolist() == list(range(7)) + list(range(13))


def test_loss_masks_and_z_loss() -> None:
    torch.manual_seed(0)
    logits = torch.randn(1, 5, 11)
    x = torch.randint(0, 11, (1, 5))
    full, ce = lm_loss(logits, x)
    ref = torch.nn.functional.cross_entropy(logits[0, :-1], x[0, 1:])
    assert torch.allclose(full, ref) and torch.allclose(ce, ref)
    seg = torch.tensor([[0, 0, 1, 1, 1]])  # target at position 2 crosses documents: excluded
    _, ce2 = lm_loss(logits, x, seg)
    keep = torch.tensor([0, 2, 3])
    assert torch.allclose(ce2, torch.nn.functional.cross_entropy(logits[0, keep], x[0, keep + 1]))
    z, _ = lm_loss(logits, x, z_loss=1e-2)
    lse = torch.logsumexp(logits[0, :-1], -1)
    assert torch.allclose(z, ref + 1e-2 * (lse ** 2).mean())
