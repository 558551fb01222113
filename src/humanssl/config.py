"""Typed configs: dataclasses filled from YAML files and `a.b=c` command-line overrides.

Why dataclasses and not a config framework: the schema is plain Python that editors and
readers understand, and every mistake (unknown key, wrong type, missing value) can be reported
in one line that names the key and what it accepts.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from humanssl.errors import UserError

T = TypeVar("T")


def required(**kwargs) -> Any:
    """A field the user must set (in YAML or on the command line); None until then."""
    return dataclasses.field(default=None, metadata={"required": True}, **kwargs)


def load_config(schema: type[T], path: str | Path | None = None, overrides: list[str] = ()) -> T:
    """Defaults of `schema`, then the YAML file, then the overrides, each checked against the schema."""
    tree: dict = {}
    if path is not None:
        tree = read_yaml(path)
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(tree, key, value)
    cfg = build(schema, tree, prefix="")
    check_required(cfg, prefix="")
    return cfg


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path} (expected a YAML file)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"config file {path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise UserError(f"override '{item}' is not of the form key=value (e.g. train.epochs=10)")
    key, text = item.split("=", 1)
    key = key.strip()
    if not key:
        raise UserError(f"override '{item}' has an empty key")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text  # a string YAML cannot parse is still a string
    return key, value


def set_dotted(tree: dict, key: str, value: Any) -> None:
    node = tree
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"override '{key}': '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def build(schema: type[T], tree: Any, prefix: str) -> T:
    """Make an instance of `schema` from a nested mapping, checking keys and types."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(tree, dict):
        raise UserError(f"config key '{prefix.rstrip('.')}' is a section; expected a mapping, got {tree!r}")
    hints = get_type_hints(schema)
    names = [f.name for f in dataclasses.fields(schema)]
    kwargs = {}
    for key, value in tree.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UserError(
                f"unknown config key '{prefix}{key}'{hint}; allowed keys in {where}: {', '.join(names)}"
            )
        kwargs[key] = coerce(hints[key], value, f"{prefix}{key}")
    return schema(**kwargs)


def coerce(kind: Any, value: Any, key: str) -> Any:
    """Check `value` against the annotation `kind`, converting only where it is lossless."""
    if dataclasses.is_dataclass(kind):
        if isinstance(value, kind):
            return value
        return build(kind, value, key + ".")
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = get_args(kind)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(option, value, key)
            except UserError:
                pass  # try the next option; if none fits, the error names the whole union
        raise type_error(key, kind, value)
    if origin is Literal:
        if value not in get_args(kind):
            allowed = ", ".join(repr(a) for a in get_args(kind))
            raise UserError(f"config key '{key}' must be one of {allowed}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise type_error(key, kind, value)
        args = get_args(kind)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise UserError(
                    f"config key '{key}' expects {len(args)} values ({type_name(kind)}), got {len(value)}: {value!r}"
                )
            items = [coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            inner = args[0] if args else Any
            items = [coerce(inner, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise type_error(key, kind, value)
        return dict(value)
    if kind is Any:
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise type_error(key, kind, value)
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise type_error(key, kind, value)
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            # YAML 1.1 reads "1e-4" (no dot in the mantissa) as a string; people write it anyway.
            return float(value)
        raise type_error(key, kind, value)
    if kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # e.g. run names typed as numbers
        raise type_error(key, kind, value)
    raise type_error(key, kind, value)


_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def type_name(kind: Any) -> str:
    if isinstance(kind, type) and not get_args(kind):
        return kind.__name__
    return str(kind).replace("typing.", "")


def type_error(key: str, kind: Any, value: Any) -> UserError:
    return UserError(
        f"config key '{key}' expects {type_name(kind)}, got {value!r} ({type(value).__name__})"
    )


def check_required(cfg: Any, prefix: str) -> None:
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_required(value, f"{prefix}{f.name}.")
        elif value is None and f.metadata.get("required"):
            raise UserError(f"config key '{prefix}{f.name}' is required; set it in the YAML file or as {prefix}{f.name}=...")


def to_dict(cfg: Any) -> dict:
    """Plain nested dict (tuples become lists) for YAML and JSON."""

    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(cfg))


def save_yaml(cfg: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def keys_of(schema: type) -> list[str]:
    """All dotted keys a schema accepts (for help texts)."""
    out = []
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            out += [f"{f.name}.{k}" for k in keys_of(kind)]
        else:
            out.append(f.name)
    return out
