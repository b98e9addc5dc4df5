from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from quartet.core.config import dump_yaml, from_dict, load_config, parse_cli, to_dict
from quartet.core.errors import QuartetError


@dataclass
class Optim:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)


@dataclass
class Cfg:
    name: str = "run"
    steps: int = 10
    mode: Literal["plain", "reinforced"] = "plain"
    out: Path | None = None
    optim: Optim = field(default_factory=Optim)
    sizes: list[int] = field(default_factory=lambda: [1, 2])


def test_yaml_round_trip(tmp_path):
    cfg = Cfg(name="x", steps=3, mode="reinforced", out=Path("/tmp/o"), optim=Optim(lr=0.5), sizes=[4])
    p = tmp_path / "c.yaml"
    p.write_text(dump_yaml(cfg))
    back = load_config(Cfg, p)
    assert back == cfg
    assert to_dict(back)["out"] == "/tmp/o"


def test_unknown_key_names_valid_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("stepz: 3\n")
    with pytest.raises(QuartetError, match="stepz.*valid keys"):
        load_config(Cfg, p)


def test_wrong_type_and_literal_rejected():
    with pytest.raises(QuartetError, match="steps"):
        from_dict(Cfg, {"steps": "many"})
    with pytest.raises(QuartetError, match="mode"):
        from_dict(Cfg, {"mode": "online"})


def test_int_accepted_for_float_and_dotted_overrides(tmp_path):
    cfg = load_config(Cfg, None, {"optim.lr": 2, "steps": 7})
    assert cfg.optim.lr == 2.0 and isinstance(cfg.optim.lr, float) and cfg.steps == 7


def test_cli_overrides_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("steps: 5\noptim:\n  lr: 0.1\n")
    cfg = parse_cli(Cfg, ["--config", str(p), "--optim.lr", "0.2"])
    assert cfg.steps == 5 and cfg.optim.lr == pytest.approx(0.2)
    cfg2 = parse_cli(Cfg, [f"--config={p}"])
    assert cfg2.optim.lr == pytest.approx(0.1)


def test_missing_config_file_is_clear(tmp_path):
    with pytest.raises(QuartetError, match="not found"):
        parse_cli(Cfg, ["--config", str(tmp_path / "nope.yaml")])


def test_bad_yaml_is_clear(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("a: [1, 2\n")
    with pytest.raises(QuartetError, match="not valid YAML"):
        load_config(Cfg, p)
