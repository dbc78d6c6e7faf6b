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


def _int_at_least(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what} integer, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive")


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "a non-negative")


def _seed(text: str) -> int:
    """A random seed: a non-negative integer (what NumPy's and Keras' generators accept)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be a non-negative integer, got {value}")
    return value


# ------------------------------------------------------------------------------------ simulate
def _simulate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="dataset directory (created; must not hold a dataset)")
    p.add_argument("--preset", default="cpu",
                   help="dataset preset: cpu (default, for the cpu64 training preset), paper "
                        "(200,000 crops of 256^2 from 1000 maps), tiny")
    p.add_argument("--maps", type=int, help="parent maps of the train split")
    p.add_argument("--map-size", type=int, help="parent map side in pixels")
    p.add_argument("--angle", type=float,
                   help="parent map side in degrees (default: map size x the preset's pixel size)")
    p.add_argument("--crop", type=int, help="crop side in pixels")
    p.add_argument("--crops-per-map", type=int, help="random crops per parent map")
    p.add_argument("--model", help="field model: lognormal (default) or gaussian")
    p.add_argument("--omega-m", type=float, help="matter density (paper: 0.26)")
    p.add_argument("--sigma-8", type=float, help="sigma_8 (paper: 0.798)")
    p.add_argument("--z-source", type=float, help="source redshift (paper: 1.0)")
    p.add_argument("--shift", type=float, help="log-normal shift (default: empty-beam |kappa_min|)")
    p.add_argument("--seed", type=_seed, help="root seed (default 0)")
    p.add_argument("--auxiliary-seed", type=_seed, help="root seed of the auxiliary split (default seed+1)")
    p.add_argument("--splits",
                   help="splits to write with optional parent-map counts, e.g. "
                        "'train=128,validation=20' (others are not written)")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _parse_splits(text: str, base) -> dict[str, int]:
    from .config import SPLITS

    counts = {name: 0 for name in SPLITS}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in SPLITS:
            raise PaperReproError(f"--splits: unknown split {name!r}; expected {', '.join(SPLITS)}")
        if value:
            try:
                counts[name] = int(value)
            except ValueError:
                raise PaperReproError(f"--splits: expected {name}=<number of maps>, got {item!r}") from None
        else:
            counts[name] = getattr(base, name)
    return counts


@command("simulate", _simulate_args)
def _simulate(args: argparse.Namespace) -> int:
    """Simulate convergence maps and write a train/validation/development/auxiliary dataset."""
    import dataclasses

    from .maps import datasets as data
    from .config import get_dataset_preset

    cfg = get_dataset_preset(args.preset)
    sim, cos = cfg.simulation, cfg.simulation.cosmology
    cos_kw = {k: v for k, v in (("Omega_m", args.omega_m), ("sigma_8", args.sigma_8)) if v is not None}
    if cos_kw:
        # keep the baryon fraction when Omega_m changes
        if "Omega_m" in cos_kw:
            cos_kw["Omega_b"] = cos.baryon_fraction * cos_kw["Omega_m"]
        cos = dataclasses.replace(cos, **cos_kw)
    sim_kw: dict = {"cosmology": cos}
    if args.map_size is not None:
        sim_kw["map_size"] = args.map_size
        if args.angle is None and args.map_size > 0:
            sim_kw["angle_deg"] = sim.angle_deg / sim.map_size * args.map_size
    for key, value in (("angle_deg", args.angle), ("model", args.model),
                       ("z_source", args.z_source), ("shift", args.shift)):
        if value is not None:
            sim_kw[key] = value
    sim = dataclasses.replace(sim, **sim_kw)
    splits = _parse_splits(args.splits, cfg.splits) if args.splits else dataclasses.asdict(cfg.splits)
    if args.maps is not None:
        splits["train"] = args.maps
    kw: dict = {"simulation": sim, "splits": splits}
    for key, value in (("crop_size", args.crop), ("crops_per_map", args.crops_per_map),
                       ("seed", args.seed), ("auxiliary_seed", args.auxiliary_seed)):
        if value is not None:
            kw[key] = value
    try:
        cfg = dataclasses.replace(cfg, **kw)
    except TypeError as exc:
        raise PaperReproError(f"invalid simulation settings: {exc}") from None
    manifest = data.build_dataset(args.out, cfg, overwrite=args.overwrite, progress=not args.quiet)
    counts = ", ".join(f"{name} {n * cfg.crops_per_map}" for name, n in cfg.splits.items())
    print(f"wrote {args.out}: {counts} crops of {cfg.crop_size}^2 px ({cfg.crop_angle_deg:.4g} deg, "
          f"{sim.model}); manifest {manifest}")
    return 0


# --------------------------------------------------------------------------------------- train
def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", help="named configuration: paper, cpu64, tiny (not with --resume)")
    p.add_argument("--data", help="training maps, .npy (N, H, W) float32")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--epochs", type=_positive_int, help="total main epochs of the run")
    p.add_argument("--seed", type=_seed, default=None, help="seed for weights, latents, flips, order")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--development", help="development maps for checkpoint selection (.npy)")
    p.add_argument("--augment-from-epoch", type=_non_negative_int, default=None,
                   help="from this 1-based epoch on, turn each real map by a random symmetry of the "
                        "square (0: never, the paper; default: the preset's)")
    p.add_argument("--spectral-weight", type=float, default=None,
                   help="weight of the spectral term in G's loss (paper_repro.spectral; 0: off, the paper; "
                        "default: the preset's); with --resume it changes the run from now on")
    p.add_argument("--spectral-from-epoch", type=_positive_int, default=None,
                   help="first 1-based epoch with the spectral term (default: the preset's)")
    p.add_argument("--minkowski-weight", type=float, default=None,
                   help="weight of the Minkowski term in G's loss (paper_repro.morphology; 0: off, the paper; "
                        "default: the preset's)")
    p.add_argument("--minkowski-from-epoch", type=_positive_int, default=None,
                   help="first 1-based epoch with the Minkowski term (default: the preset's)")
    p.add_argument("--spectral-decay", type=float, default=None,
                   help="0: the batch spectral term; in (0, 1): the averaged term, its running mean's "
                        "decay per step (paper_repro.spectral; default: the preset's)")


@command("train", _train_args)
def _train(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from .gan import training
    training.train(out=args.out, preset=args.preset, data=args.data, epochs=args.epochs,
                   seed=args.seed, resume=args.resume, development=args.development,
                   augment_from_epoch=args.augment_from_epoch, spectral_weight=args.spectral_weight,
                   spectral_from_epoch=args.spectral_from_epoch, spectral_decay=args.spectral_decay,
                   minkowski_weight=args.minkowski_weight, minkowski_from_epoch=args.minkowski_from_epoch)
    return 0


# -------------------------------------------------------------------------------------- select
def _select_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--from-epoch", type=_positive_int, default=1,
                   help="first saved epoch generator to score (default: all saved)")
    p.add_argument("--development", help="development maps .npy (default: the run's)")
    p.add_argument("--maps", type=_positive_int, default=None,
                   help="maps per score, from latents that picked no candidate (default: the preset's "
                        "confirmation_maps; without them, the training-time score)")
    p.add_argument("--latent-seed", type=_seed, default=None,
                   help="seed of the scoring latents (default: 54321 when confirming, else 12345 as in training)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@command("select", _select_args)
def _select(args: argparse.Namespace) -> int:
    """Rescore a run's saved epoch generators and kept candidates; keep the lowest in best/."""
    _quiet_tensorflow()
    from .evaluation.selection import rescore_epochs
    if args.maps is not None and args.maps < 2:
        raise PaperReproError(f"--maps must be at least 2, got {args.maps}")
    r = rescore_epochs(args.run, first_epoch=args.from_epoch, development=args.development,
                       n_maps=args.maps, seed=args.latent_seed, progress=not args.quiet)
    print(f"scored {len(r['scores'])} epoch generators, {len(r['candidate_scores'])} kept candidates"
          + (f" and the averaged generator ({r['averaged_score']:.4g})" if r["averaged_score"] is not None else "")
          + "; "
          f"lowest: {r['winner']} ({r['winner_score']:.4g}); previous best: {r['incumbent_score']:.4g}; "
          f"best/ {'replaced by ' + r['winner'] if r['replaced'] else 'kept'}")
    return 0


# ------------------------------------------------------------------------------------- average
def _average_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--from-epoch", type=_positive_int, required=True,
                   help="first saved epoch generator in the average")
    p.add_argument("--to-epoch", type=_positive_int, default=None,
                   help="last saved epoch generator in the average (default: the last saved)")
    p.add_argument("--candidates", action="store_true",
                   help="also average the kept selection snapshots in candidates/")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@command("average", _average_args)
def _average(args: argparse.Namespace) -> int:
    """Average the weights of a run's late generators into averaged/ (score or select it next)."""
    _quiet_tensorflow()
    from .gan.averaging import average_run
    if args.to_epoch is not None and args.to_epoch < args.from_epoch:
        raise PaperReproError(f"--to-epoch {args.to_epoch} is before --from-epoch {args.from_epoch}")
    r = average_run(args.run, first_epoch=args.from_epoch, last_epoch=args.to_epoch,
                    candidates=args.candidates, progress=not args.quiet)
    epochs = r["epochs"]
    span = f"epochs {epochs[0]}-{epochs[-1]}" if epochs else "no epoch generators"
    print(f"wrote {r['path']}: mean of {r['members']} generators ({span}"
          + (f", {len(r['steps'])} kept candidates" if r["steps"] else "") + ")")
    return 0


# --------------------------------------------------------------------------------------- score
def _score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--checkpoint", default=None,
                   help="epoch number, step-N (a kept candidate), 'last', 'best' or 'averaged' (default: best if present, else last)")
    p.add_argument("--development", help="development maps .npy (default: the run's)")
    p.add_argument("--maps", type=_positive_int, default=None,
                   help="maps per score (default: the preset's confirmation_maps, else selection_maps)")
    p.add_argument("--latent-seed", type=_seed, default=None,
                   help="seed of the scoring latents (default: 54321 when confirming, else 12345)")
    p.add_argument("--json", default=None, help="also write the result to this .json file")


@command("score", _score_args)
def _score(args: argparse.Namespace) -> int:
    """Score one generator of a run on development maps, as select does; changes nothing in the run."""
    _quiet_tensorflow()
    from pathlib import Path

    from .gan.runs import write_json
    from .evaluation.selection import score_generator
    if args.maps is not None and args.maps < 2:
        raise PaperReproError(f"--maps must be at least 2, got {args.maps}")
    if args.json is not None and not args.json.endswith(".json"):
        raise PaperReproError(f"--json must name a .json file, got {args.json!r}")
    r = score_generator(args.run, checkpoint=args.checkpoint, development=args.development,
                        n_maps=args.maps, seed=args.latent_seed)
    parts = ", ".join(f"{k} {v:.4g}" for k, v in r["components"].items())
    print(f"{r['generator']}: score {r['score']:.4g}" + (f" ({parts})" if parts else "")
          + f" on {r['maps']} maps, latent seed {r['seed']}, against {r['development']}")
    if args.json is not None:
        write_json(Path(args.json), r)
    return 0


# ----------------------------------------------------------------------------------- calibrate
def _calibrate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run directory whose generator is calibrated")
    p.add_argument("--out", required=True, help="new run directory for the calibrated generator")
    p.add_argument("--checkpoint", default=None,
                   help="which generator: 'best' (default), 'last', an epoch, or step-N (a kept candidate)")
    p.add_argument("--data", default=None, help="real (training) maps .npy (default: the run's training data)")
    p.add_argument("--maps", type=_positive_int, default=16384,
                   help="generated maps the fit uses (default: 16384)")
    p.add_argument("--latent-seed", type=_seed, default=None,
                   help="seed of the fit's latents (default: 31415, used by no other step)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@command("calibrate", _calibrate_args)
def _calibrate(args: argparse.Namespace) -> int:
    """Append a fitted output calibration (fixed pattern removed, 2D power matched) to a run's generator (best, or --checkpoint)."""
    _quiet_tensorflow()
    from .gan import calibration, runs
    from .maps.io import open_maps
    from .gan.runs import read_run_info
    if args.maps < 2:
        raise PaperReproError(f"--maps must be at least 2, got {args.maps}")
    info = read_run_info(args.run)
    data = args.data or info.data
    if data is None:
        raise PaperReproError(f"{args.run}: the run names no training data; pass --data")
    real = open_maps(data, size=info.preset.model.image_size)
    seed = calibration.CALIBRATION_SEED if args.latent_seed is None else args.latent_seed
    fit = runs.calibrate_run(args.run, args.out, real, n_maps=args.maps, seed=seed,
                                    checkpoint=args.checkpoint, progress=not args.quiet)
    which = "best" if args.checkpoint is None else args.checkpoint
    print(f"wrote {args.out}: {args.run}'s {which} generator calibrated on {fit.n_generated} of its maps "
          f"(latent seed {fit.seed}) and {fit.n_real} real maps; mode gains {fit.gain_min:.3f}-"
          f"{fit.gain_max:.3f}, rms log power error before {fit.rms_log_power_error:.3f}, "
          f"pattern rms {fit.pattern_rms_over_map_sd:.3f} of the pixel sd")
    return 0


# ---------------------------------------------------------------------------------------- pick
def _pick_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run directory with kept candidates (candidates/)")
    p.add_argument("--out", required=True, help="new run directory for the calibrated pick")
    p.add_argument("--development", nargs="+", default=None,
                   help="development-type maps .npy to pick on, pooled (default: the run's development set); "
                        "never the validation set")
    p.add_argument("--data", default=None, help="real (training) maps .npy for the calibration (default: the run's)")
    p.add_argument("--maps", type=_positive_int, default=8192, help="generated maps per seed (default: 8192)")
    p.add_argument("--calibration-maps", type=_positive_int, default=16384,
                   help="generated maps each candidate's calibration fit uses (default: 16384)")
    p.add_argument("--seeds", type=_seed, nargs="+", default=None,
                   help="latent seeds of the score (default: 777 2027)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@command("pick", _pick_args)
def _pick(args: argparse.Namespace) -> int:
    """Calibrate each kept candidate of a run; write the one with the lowest worst-mean |z| (W) as a new run."""
    _quiet_tensorflow()
    from .gan.runs import read_run_info
    from .evaluation.selection import PICK_SEEDS, pick_calibrated
    info = read_run_info(args.run)
    dev = args.development or ([info.development] if info.development else None)
    if not dev:
        raise PaperReproError(f"{args.run} has no development set; pass --development D.npy ...")
    rec = pick_calibrated(args.run, args.out, dev, data=args.data, n_maps=args.maps,
                          seeds=tuple(args.seeds or PICK_SEEDS), calibration_maps=args.calibration_maps,
                          progress=not args.quiet)
    ranked = sorted(rec["candidates"].items(), key=lambda kv: kv[1]["W"])
    print(f"wrote {args.out}: step {rec['global_step']} of {args.run}, calibrated; W {rec['W']:.3f} on "
          f"{rec['reference_maps']} maps ({len(ranked)} candidates, W {ranked[0][1]['W']:.3f}-{ranked[-1][1]['W']:.3f})")
    return 0


# ------------------------------------------------------------------------------------ generate
def _generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--checkpoint", default=None,
                   help="epoch number, step-N (a kept candidate), 'last', 'best' or 'averaged' (default: best if present, else last)")
    p.add_argument("--n", type=_positive_int, required=True, help="number of maps")
    p.add_argument("--seed", type=_seed, required=True)
    p.add_argument("--out", required=True, help="output .npy (N, H, W) float32")
    p.add_argument("--batch-size", type=_positive_int, default=256)


@command("generate", _generate_args)
def _generate(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from .gan import runs
    runs.generate_to_file(args.run, args.out, n=args.n, seed=args.seed,
                          checkpoint=args.checkpoint, batch_size=args.batch_size)
    return 0


# ------------------------------------------------------------------------------------ validate
def _validate_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--generated", help="generated maps .npy (N, H, W)")
    src.add_argument("--run", help="run directory: generate the maps from its generator (best by default)")
    p.add_argument("--reference", help="validation maps .npy (simulations never used in training; "
                                       "default: the 'reference' dataset in data/reference, simulated once)")
    p.add_argument("--auxiliary", help="independent simulation maps .npy (the baseline); "
                                       "without it the reference set is split in two")
    p.add_argument("--training", help="training maps .npy: adds the memorisation criterion "
                                      "(default with --run: the run's training data, if readable)")
    p.add_argument("--angle", type=float, help="side of a map in degrees (default: from the manifest)")
    p.add_argument("--report", help="write the full JSON report here")
    p.add_argument("--n", type=_positive_int, help="maps to generate with --run (default: as many as --reference)")
    p.add_argument("--seed", type=_seed, default=20190101, help="seed of the maps generated with --run")
    p.add_argument("--checkpoint", default=None, help="with --run: epoch, step-N, 'last', 'best' or 'averaged'")


@command("validate", _validate_args)
def _validate(args: argparse.Namespace) -> int:
    """Certify generated maps against simulations; exit 0 pass, 1 fail, 2 bad input."""
    _quiet_tensorflow()
    from pathlib import Path

    from .evaluation import certification, reproduction

    if args.generated is None and args.run is None and args.reference is None:
        run, gen, ref, aux, train = reproduction.default_inputs(n=args.n)   # the shipped model
        args.run, args.generated, args.reference, args.auxiliary = str(run), str(gen), str(ref), str(aux)
        args.training = args.training or str(train)
    if args.generated is None and args.run is None:
        raise PaperReproError("give --generated G.npy or --run RUN_DIR")
    if args.reference is None:   # the project's reference simulations (seeds never used in training)
        ref = reproduction.ensure_dataset(reproduction.DATA_ROOT / "reference", "reference")
        args.reference = str(ref / "validation.npy")
        args.auxiliary = args.auxiliary or str(ref / "auxiliary.npy")
    if args.training is None and args.run is not None:   # the run's own training maps, if readable
        from .gan.runs import read_run_info
        data = read_run_info(args.run).data
        args.training = data if data and Path(data).exists() else None
    generated = args.generated
    tmp = None
    if generated is None:
        from .maps.io import open_maps
        import tempfile
        n = args.n or len(open_maps(args.reference, check_finite=False))
        tmp = tempfile.TemporaryDirectory(prefix="paper-repro-validate-")
        generated = reproduction.generated_maps(args.run, n, args.seed, Path(tmp.name) / "generated.npy",
                                                checkpoint=args.checkpoint)
    try:
        inputs = certification.prepare(generated, args.reference, args.auxiliary, args.training,
                                       angle_deg=args.angle)
        report = certification.certify(inputs, progress=True)
        if args.run is not None:
            from .gan.models import flops_per_map
            from .gan.runs import load_generator
            model, preset = load_generator(args.run, args.checkpoint)
            report.speed = certification.generation_speed(
                model, preset.model.latent_dim, flops_per_map=flops_per_map(preset.model)["generator"])
    finally:
        if tmp is not None:
            tmp.cleanup()
    if args.report:
        report.write(args.report)
    print(report.summary())
    return 0 if report.passed else 1


# ------------------------------------------------------------------------------------ diagnose
def _diagnose_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run directory (its latest checkpoint's discriminator)")
    p.add_argument("--heldout", help="real maps never trained on .npy (default: the run's development set)")
    p.add_argument("--n", type=_positive_int, default=4000, help="maps per set (default 4000)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the training-map sample and latents")


@command("diagnose", _diagnose_args)
def _diagnose(args: argparse.Namespace) -> int:
    """Has the discriminator memorised the training set? Its verdict on training vs held-out maps."""
    _quiet_tensorflow()
    from .gan.training import discriminator_overfitting
    r = discriminator_overfitting(args.run, args.heldout, n=args.n, seed=args.seed)
    print(f"{'maps':26s} {'called real':>11s} {'mean logit':>10s} {'n':>6s}")
    for name, v in r.items():
        print(f"{name:26s} {v['real_fraction']:11.3f} {v['mean_logit']:+10.3f} {v['n']:6d}")
    gap = r["training"]["real_fraction"] - r["held-out"]["real_fraction"]
    print(f"training minus held-out: {gap:+.3f} (about 0 when the discriminator has not memorised the training set)")
    return 0


# ----------------------------------------------------------------------------------- reproduce
def _reproduce_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="figures", help="where report.json and Figures 1-8 go")
    p.add_argument("--no-figures", action="store_true", help="certify only")


@command("reproduce", _reproduce_args)
def _reproduce(args: argparse.Namespace) -> int:
    """The main job: certify the shipped model on fresh simulations, write figures and report."""
    _quiet_tensorflow()
    from .evaluation import reproduction
    return reproduction.reproduce(args.out, figures=not args.no_figures)


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
        from .evaluation import figures  # noqa: F401
    except ImportError:
        print("make-figures: not built yet (the figures module lands with the figures issue)",
              file=sys.stderr)
        return 2
    return figures.main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
