"""The `mbv2` command: the library's views without the app."""

from __future__ import annotations

import argparse
import sys

from mbv2.analysis import CONVENTIONS, analyse
from mbv2.errors import MBV2Error
from mbv2.spec import ArchSpec


def _summary(args: argparse.Namespace) -> None:
    spec = ArchSpec(width_mult=args.width, resolution=args.resolution)
    analysis = analyse(spec)
    print(f"MobileNetV2 {spec.width_mult}/{spec.resolution}: {analysis.params:,} parameters")
    for convention, meaning in CONVENTIONS.items():
        print(f"  {analysis.madds(convention) / 1e6:8.1f}M multiply-adds  ({meaning})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mbv2", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    summary = commands.add_parser("summary", help="parameters and multiply-adds of a configuration")
    summary.add_argument("--width", type=float, default=1.0)
    summary.add_argument("--resolution", type=int, default=224)
    summary.set_defaults(run=_summary)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except MBV2Error as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
