"""The `humanssl` command: one sub-command per thing a user does."""

from __future__ import annotations

import argparse
import sys
from importlib import resources

import yaml

from humanssl import __version__
from humanssl.config import load_config, to_dict
from humanssl.errors import UserError

DEMO_CONFIG = "demo_pretrain.yaml"


def demo_config_path():
    return resources.files("humanssl") / "configs" / DEMO_CONFIG


def cmd_pretrain(args: argparse.Namespace) -> int:
    from humanssl.pretrain import run_pretrain
    from humanssl.pretrain_config import PretrainConfig

    config, overrides = split_config_and_overrides(args.items)
    with resources.as_file(demo_config_path()) as demo:
        cfg = load_config(PretrainConfig, config or demo, overrides)
    if args.show_config:
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        return 0
    run_pretrain(cfg)
    return 0


def split_config_and_overrides(items: list[str]) -> tuple[str | None, list[str]]:
    """The first item is a YAML file unless it is a key=value override."""
    if items and "=" not in items[0]:
        return items[0], items[1:]
    return None, list(items)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="humanssl",
        description="Self-supervised pretraining and evaluation for human-centric vision.",
        epilog="Run `humanssl COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"humanssl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser(
        "pretrain", help="self-supervised pretraining (default: DINO demo on built-in synthetic people, CPU)",
        description="Pretrain a backbone. With no arguments: the embedded demo (synthetic people, tiny "
                    "backbone, CPU, a few minutes) with kNN re-id before and after. Otherwise "
                    "CONFIG.yaml and/or key=value overrides (e.g. train.epochs=10 data.root=/data); "
                    "overrides given without a CONFIG apply to the demo.")
    p.add_argument("items", nargs="*", metavar="[CONFIG.yaml] [key=value ...]")
    p.add_argument("--show-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=cmd_pretrain)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except UserError as err:
        print(f"humanssl: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("humanssl: interrupted; the last checkpoint is intact (continue with train.resume=auto)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
