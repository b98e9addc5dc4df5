from pathlib import Path

import pytest

from quartet.core.config import load_config
from quartet.core.errors import QuartetError
from quartet.lm.prepare import PrepareConfig
from quartet.lm.train import TrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "lm"


@pytest.mark.parametrize("name", ["train-dd-grow-p2", "train-cc-1024", "paper-scale"])
def test_train_configs_load(name: str) -> None:
    cfg = load_config(TrainConfig, CONFIGS / f"{name}.yaml")
    assert cfg.tokens_per_step % cfg.seq_len == 0


def test_prepare_config_loads_and_unknown_keys_fail(tmp_path: Path) -> None:
    assert load_config(PrepareConfig, CONFIGS / "prepare-debian-pydocs.yaml").max_log2 == 10
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_log: 10\n")
    with pytest.raises(QuartetError, match="max_log"):
        load_config(PrepareConfig, bad)
