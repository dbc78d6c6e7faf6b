"""What every ``paper-repro`` subcommand shares: the registry, argument types, a quiet TensorFlow import."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Callable

#: subcommand name -> (function adding its arguments, function running it)
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, add_args: Callable[[argparse.ArgumentParser], None]):
    """Register ``run(args) -> exit status`` as the subcommand ``name``."""
    def deco(run: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (add_args, run)
        return run
    return deco


def quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up lines on stderr (CUDA probes, absl's notice), so a
    command's own output and one-line errors are what the user sees; they are shown if the import
    fails. ``TF_CPP_MIN_LOG_LEVEL`` set by the user wins (0 shows everything)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules or os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow  # noqa: F401  (heavy: loaded only by the commands that need it)
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def int_at_least(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what} integer, got {value}")
    return value


def positive_int(text: str) -> int:
    return int_at_least(text, 1, "a positive")


def non_negative_int(text: str) -> int:
    return int_at_least(text, 0, "a non-negative")


def seed_arg(text: str) -> int:
    """A random seed: a non-negative integer (what NumPy's and Keras' generators accept)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be a non-negative integer, got {value}")
    return value
