from dataclasses import dataclass, field
from typing import Literal

import pytest

from humanssl.config import load_config, required, save_yaml
from humanssl.errors import UserError


@dataclass
class Inner:
    lr: float = 0.1
    size: tuple[int, int] = (256, 128)
    name: Literal["adamw", "sgd"] = "adamw"
    path: str | None = None


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    epochs: int = 10
    flag: bool = False
    root: str = required()


def test_yaml_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("epochs: 3\ninner:\n  lr: 1\n  size: [64, 32]\nroot: /data\n")
    cfg = load_config(Outer, f, ["inner.name=sgd", "flag=true", "inner.path=/x"])
    assert cfg.epochs == 3 and cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    assert cfg.inner.size == (64, 32) and cfg.inner.name == "sgd" and cfg.flag is True
    assert cfg.inner.path == "/x" and cfg.root == "/data"


def test_unknown_key_names_key_and_allowed_keys():
    with pytest.raises(UserError) as err:
        load_config(Outer, None, ["root=/d", "inner.lrr=3"])
    msg = str(err.value)
    assert "inner.lrr" in msg and "did you mean 'lr'" in msg and "size" in msg


def test_wrong_type_names_key_and_type():
    with pytest.raises(UserError, match=r"'epochs' expects int, got 'ten'"):
        load_config(Outer, None, ["root=/d", "epochs=ten"])
    with pytest.raises(UserError, match=r"'inner.size' expects 2 values"):
        load_config(Outer, None, ["root=/d", "inner.size=[1,2,3]"])
    with pytest.raises(UserError, match=r"must be one of 'adamw', 'sgd'"):
        load_config(Outer, None, ["root=/d", "inner.name=lamb"])
    with pytest.raises(UserError, match=r"'flag' expects bool"):
        load_config(Outer, None, ["root=/d", "flag=3"])


def test_exponent_without_dot_is_a_float():
    # YAML 1.1 reads 1e-4 as the string "1e-4"; a float key still takes it.
    cfg = load_config(Outer, None, ["root=/d", "inner.lr=1e-4"])
    assert cfg.inner.lr == pytest.approx(1e-4)
    with pytest.raises(UserError, match=r"'inner.lr' expects float, got '1e-4x'"):
        load_config(Outer, None, ["root=/d", "inner.lr=1e-4x"])


def test_missing_required_value():
    with pytest.raises(UserError, match=r"'root' is required"):
        load_config(Outer, None, [])


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(Outer, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(Outer, bad)
    with pytest.raises(UserError, match="not of the form key=value"):
        load_config(Outer, None, ["epochs"])


def test_round_trip_through_yaml(tmp_path):
    cfg = load_config(Outer, None, ["root=/d", "inner.size=[8,4]"])
    save_yaml(cfg, tmp_path / "out.yaml")
    again = load_config(Outer, tmp_path / "out.yaml")
    assert again == cfg
