"""``quartet clip reproduce --preset smoke``: the whole pipeline (teachers, captioner, reinforcement, arms, report)
on 48 pairs; slow because every stage trains something."""

from __future__ import annotations

import pytest

from quartet.clip.reproduce import PRESETS, ReproduceConfig, arms_for, headline, run_reproduce
from quartet.core.errors import QuartetError


def test_arms_cover_the_paper_ablations():
    arms = arms_for(PRESETS["quick"], seeds=3)
    groups = {g for g, _, _ in arms}
    assert groups == {"headline", "components", "ensemble", "kd_scale", "n_aug", "n_syn", "storage", "lambda"}
    names = [n for _, n, _ in arms]
    assert names[:6] == ["plain/s0", "full/s0", "plain/s1", "full/s1", "plain/s2", "full/s2"]
    assert len(set(names)) == len(names)
    over = dict((n, o) for _, n, o in arms)
    assert over["plain/s0"]["mode"] == "plain" and over["distill-only"]["syn_captions"] is False
    assert over["syn-captions"]["lam"] == 0.0 and over["teacher-1"]["teachers"] == [1]


def test_headline_prefers_balanced_accuracy():
    m = {"emoji-groups/bal1": 20.0, "emoji-groups/top1": 60.0, "emoji-retrieval/i2t_r1": 4.0,
         "emoji-retrieval/t2i_r1": 2.0}
    h = headline(m)
    assert h == {"zs": 20.0, "zs_top1": 60.0, "ret": 3.0}


@pytest.mark.slow
def test_smoke_preset_writes_a_report(tmp_path):
    path = run_reproduce(ReproduceConfig(preset="smoke", seeds=1, arms=["headline", "distill-only"],
                                         out=str(tmp_path / "rep")))
    text = path.read_text()
    assert "Headline: plain CLIP vs full reinforced" in text and "components" in text
    assert (tmp_path / "rep" / "plots" / "arms_zs.png").exists()


def test_unknown_arms_are_refused_before_any_work(tmp_path):
    with pytest.raises(QuartetError, match="no arm or group named.*plain/s9"):
        run_reproduce(ReproduceConfig(preset="smoke", seeds=2, arms=["plain/s0,plain/s9"], out=str(tmp_path / "r")))
    assert not (tmp_path / "r").exists()


def test_seed_noise_verdict_is_a_paired_test():
    from quartet.clip.reproduce import seed_noise_verdict

    assert "beyond seed noise" in seed_noise_verdict([2.1, 1.8, 2.5, 1.9, 2.2])
    assert "within seed noise" in seed_noise_verdict([1.7, 5.78, -0.78])  # wins 2 of 3 but not consistently
    assert "wins 2 of 3" in seed_noise_verdict([1.7, 5.78, -0.78])
    assert "Too few" in seed_noise_verdict([3.0, 4.0])
