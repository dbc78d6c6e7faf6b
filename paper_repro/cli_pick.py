"""The ``paper-repro pick`` subcommand: calibrate a run's generator and pick one among its candidates
(unconditional runs: :mod:`paper_repro.evaluation.selection`; conditional runs, over their cosmology
grid: :mod:`paper_repro.evaluation.conditional_selection`)."""
from __future__ import annotations

import argparse

from .cli_base import command, positive_int, quiet_tensorflow, seed_arg
from .config import ConditionalPreset
from .errors import PaperReproError
from .evaluation import selection


# ---------------------------------------------------------------------------------------- pick
def _pick_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run directory with kept candidates (candidates/)")
    p.add_argument("--out", required=True, help="new run directory for the calibrated generator")
    p.add_argument("--checkpoint", default=None,
                   help="calibrate only this generator, without scoring: step-N (a kept candidate), "
                        "'best', 'last' or an epoch number (default: every kept candidate, scored; the "
                        "lowest W wins)")
    p.add_argument("--development", nargs="+", default=None,
                   help="development-type maps .npy to pick on, pooled (default: the run's development set); "
                        "never the validation set")
    p.add_argument("--data", default=None, help="real (training) maps .npy for the calibration (default: the run's)")
    p.add_argument("--maps", type=positive_int, default=None, help="generated maps per seed (default: 8192)")
    p.add_argument("--calibration-maps", type=positive_int, default=None,
                   help="generated maps each calibration fit uses (default: 16384; a conditional run: "
                        "8192 per training node)")
    p.add_argument("--seeds", type=seed_arg, nargs="+", default=None,
                   help="latent seeds of the score (default: 777 2027)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="a conditional run: compare its last N epoch-end generators (default: 10), each "
                        "calibrated over the grid and scored on every training node's development maps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@command("pick", _pick_args)
def _pick(args: argparse.Namespace) -> int:
    """Calibrate each kept candidate of a run; write the one with the lowest worst-mean |z| (W) as a new run."""
    quiet_tensorflow()
    from .gan.runs import read_run_info  # keras

    if args.checkpoint is not None:
        unused = [flag for flag, value in (("--development", args.development), ("--maps", args.maps),
                                           ("--seeds", args.seeds)) if value is not None]
        if unused:
            raise PaperReproError(f"--checkpoint calibrates one generator without scoring it; "
                                  f"{', '.join(unused)} would not be used")
        fit = selection.calibrate_checkpoint(args.run, args.out, args.checkpoint, data=args.data,
                                   calibration_maps=args.calibration_maps, progress=not args.quiet)
        if hasattr(fit, "nodes"):
            print(f"wrote {args.out}: the {args.checkpoint} generator of {args.run}, calibrated over "
                  f"{len(fit.nodes)} training nodes ({fit.n_generated_per_node} of its maps a node, each node's "
                  f"own latents from seed {fit.seed}; {fit.n_real} real maps) by polynomials of degree {fit.degree} in the parameters; "
                  f"mode gains {fit.gain_min:.3f}-{fit.gain_max:.3f}, rms log power error {fit.rms_log_power_error:.3f} "
                  f"before, {fit.rms_log_power_error_after:.3f} left by the fit; map means {fit.mean_offset:.2f} sd off "
                  f"(rms over nodes), their sd {fit.mean_sd_ratio_min:.3f}-{fit.mean_sd_ratio_max:.3f} of the real")
            return 0
        print(f"wrote {args.out}: the {args.checkpoint} generator of {args.run}, calibrated on "
              f"{fit.n_generated} of its maps (latent seed {fit.seed}) and {fit.n_real} real maps; mode "
              f"gains {fit.gain_min:.3f}-{fit.gain_max:.3f}, rms log power error before "
              f"{fit.rms_log_power_error:.3f}, pattern rms {fit.pattern_rms_over_map_sd:.3f} of the pixel sd")
        return 0
    info = read_run_info(args.run)
    if isinstance(info.preset, ConditionalPreset):
        return _pick_conditional(args)
    if args.epochs is not None:
        raise PaperReproError("--epochs picks among a conditional run's epoch-end generators; an unconditional "
                              "run is picked among its kept candidates")
    dev = args.development or ([info.development] if info.development else None)
    if not dev:
        raise PaperReproError(f"{args.run} has no development set; pass --development D.npy ...")
    rec = selection.pick_calibrated(args.run, args.out, dev, data=args.data, n_maps=args.maps or 8192,
                                    seeds=tuple(args.seeds or selection.PICK_SEEDS),
                                    calibration_maps=args.calibration_maps or selection.CALIBRATION_MAPS, progress=not args.quiet)
    ranked = sorted(rec["candidates"].items(), key=lambda kv: kv[1]["W"])
    print(f"wrote {args.out}: step {rec['global_step']} of {args.run}, calibrated; W {rec['W']:.3f} on "
          f"{rec['reference_maps']} maps ({len(ranked)} candidates, W {ranked[0][1]['W']:.3f}-{ranked[-1][1]['W']:.3f})")
    return 0


def _pick_conditional(args: argparse.Namespace) -> int:
    """``pick`` of a conditional run: its last epoch-end generators, calibrated over the grid, scored
    on the training nodes' development maps (paper_repro.evaluation.conditional_selection)."""
    from .evaluation import conditional_selection as cs

    if args.development is not None:
        raise PaperReproError("a conditional run is picked on its grid's development maps; drop --development")
    rec = cs.pick_conditional(args.run, args.out, data=args.data, epochs=args.epochs or cs.PICK_EPOCHS,
                              n_maps=args.maps or cs.PICK_MAPS, seeds=tuple(args.seeds or selection.PICK_SEEDS),
                              calibration_maps=args.calibration_maps or cs.CALIBRATION_MAPS,
                              progress=not args.quiet)
    ws = sorted(r["W"] for r in rec["candidates"].values())
    print(f"wrote {args.out}: epoch {rec['epoch']} of {args.run}, calibrated over the grid; W {rec['W']:.3f} "
          f"(mean over training nodes; {len(ws)} candidates, W {ws[0]:.3f}-{ws[-1]:.3f})")
    return 0
