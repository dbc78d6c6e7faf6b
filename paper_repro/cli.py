"""The ``paper-repro`` command (subcommands) and ``make-figures``: parse arguments, call the package.

Errors a user can cause print as one line on stderr and exit with status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from .errors import PaperReproError

#: subcommand name -> (function adding its arguments, function running it)
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, add_args: Callable[[argparse.ArgumentParser], None]):
    """Register ``run(args) -> exit status`` as the subcommand ``name``."""
    def deco(run: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (add_args, run)
        return run
    return deco


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


# --------------------------------------------------------------------------------------- train
def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", help="named configuration: paper, cpu64, tiny (not with --resume)")
    p.add_argument("--data", help="training maps, .npy (N, H, W) float32")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--epochs", type=_positive_int, help="total main epochs of the run")
    p.add_argument("--seed", type=int, default=None, help="seed for weights, latents, flips, order")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--development", help="development maps for checkpoint selection (.npy)")


@command("train", _train_args)
def _train(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from . import training
    training.train(out=args.out, preset=args.preset, data=args.data, epochs=args.epochs,
                   seed=args.seed, resume=args.resume, development=args.development)
    return 0


# ------------------------------------------------------------------------------------ generate
def _generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--checkpoint", default=None,
                   help="epoch number, 'last', or 'best' (default: best if present, else last)")
    p.add_argument("--n", type=_positive_int, required=True, help="number of maps")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="output .npy (N, H, W) float32")
    p.add_argument("--batch-size", type=_positive_int, default=256)


@command("generate", _generate_args)
def _generate(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from . import runs
    runs.generate_to_file(args.run, args.out, n=args.n, seed=args.seed,
                          checkpoint=args.checkpoint, batch_size=args.batch_size)
    return 0


# ---------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paper-repro",
        description="CosmoGAN reproduction: simulate maps, train, generate, validate.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (add_args, run) in COMMANDS.items():
        p = sub.add_parser(name, help=(run.__doc__ or "").strip().split("\n")[0] or None)
        add_args(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except PaperReproError as exc:
        print(f"paper-repro {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"paper-repro {args.command}: interrupted", file=sys.stderr)
        return 130


def make_figures_main(argv: Sequence[str] | None = None) -> int:
    """``make-figures``: regenerate the paper's Figures 1-8 (see paper_repro.figures)."""
    try:
        from . import figures  # noqa: F401
    except ImportError:
        print("make-figures: not built yet (the figures module lands with the figures issue)",
              file=sys.stderr)
        return 2
    return figures.main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
