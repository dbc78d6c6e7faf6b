"""The ``paper-repro`` command (subcommands) and ``make-figures``: parse arguments, call the package.

Errors a user can cause print as one line on stderr and exit with status 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from typing import Sequence

from . import __version__
from .cli_base import COMMANDS, command, int_at_least, non_negative_int, positive_int, quiet_tensorflow, seed_arg  # noqa: F401
from .config import COSMO_GRID_PRESETS, PRECISIONS, SPLITS, ConditionalPreset, get_dataset_preset, get_preset
from .errors import PaperReproError
from .evaluation import certification, draws, html_report, reproduction, selection
from .maps import datasets, ingest


# ------------------------------------------------------------------------------------ simulate
def _simulate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="dataset directory (created; must not hold a dataset)")
    p.add_argument("--preset", default="cpu",
                   help="dataset preset: cpu (default, for the cpu64 training preset), paper "
                        "(200,000 crops of 256^2 from 1000 maps), tiny; "
                        "cosmo-grid or tiny-cosmo: maps at a grid of (Omega_m, sigma_8) nodes")
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
    p.add_argument("--seed", type=seed_arg, help="root seed (default 0)")
    p.add_argument("--auxiliary-seed", type=seed_arg, help="root seed of the auxiliary split (default seed+1)")
    p.add_argument("--splits",
                   help="splits to write with optional parent-map counts, e.g. "
                        "'train=128,validation=20' (others are not written)")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _parse_splits(text: str, base) -> dict[str, int]:
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
    if args.preset in COSMO_GRID_PRESETS:
        return _simulate_grid(args)
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
    manifest = datasets.build_dataset(args.out, cfg, overwrite=args.overwrite, progress=not args.quiet)
    counts = ", ".join(f"{name} {n * cfg.crops_per_map}" for name, n in cfg.splits.items())
    print(f"wrote {args.out}: {counts} crops of {cfg.crop_size}^2 px ({cfg.crop_angle_deg:.4g} deg, "
          f"{sim.model}); manifest {manifest}")
    return 0


def _simulate_grid(args: argparse.Namespace) -> int:
    """``simulate --preset cosmo-grid``: every node of a cosmology grid (paper_repro.maps.cosmo_grid)."""
    from .maps import cosmo_grid

    fixed = [f"--{k.replace('_', '-')}" for k, v in vars(args).items()
             if v is not None and k not in ("out", "preset", "overwrite", "quiet", "command", "_run")]
    if fixed:
        raise PaperReproError(f"simulate --preset {args.preset}: the grid's settings are fixed by the preset; "
                              f"drop {', '.join(fixed)}")
    manifest = cosmo_grid.build_cosmo_grid(args.out, args.preset, overwrite=args.overwrite, progress=not args.quiet)
    grid = cosmo_grid.load_cosmo_grid(args.out)
    print(f"wrote {args.out}: {len(grid.node_names('train'))} training nodes ({len(grid.training()[0])} "
          f"training crops), {len(grid.node_names('held_out'))} held-out nodes; manifest {manifest}")
    return 0


# -------------------------------------------------------------------------------------- ingest
def _ingest_args(p: argparse.ArgumentParser) -> None:
    p.description = ("Build a dataset from your own convergence maps: FITS files as LensTools writes them "
                     "(the map in the primary HDU, its side in degrees in the ANGLE keyword), folders of "
                     "them, or .npy maps with --angle. Each parent map goes to one split; each gives "
                     "seeded random crops, written as 'paper-repro simulate' writes a dataset.")
    p.add_argument("maps", nargs="+", metavar="MAPS",
                   help="FITS maps or folders of them; .npy files of one map (H, W) or a stack (N, H, W)")
    p.add_argument("--out", required=True, help="dataset directory (created; must not hold a dataset)")
    p.add_argument("--crop", type=positive_int, default=256, help="crop side in pixels (default 256)")
    p.add_argument("--crops-per-map", type=positive_int, default=200,
                   help="random crops per parent map (default 200)")
    p.add_argument("--splits", required=True,
                   help="parent maps per split, e.g. 'train=80,validation=10,development=5,auxiliary=5'")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the split assignment and crops (default 0)")
    p.add_argument("--angle", type=float,
                   help="side of a parent map in degrees, for .npy maps and FITS maps without ANGLE")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


class _CountRequired:
    """The ``base`` of :func:`_parse_splits` when every split needs its number of maps."""

    def __getattr__(self, name: str):
        raise PaperReproError(f"--splits: give the number of parent maps of {name}, e.g. {name}=10")


@command("ingest", _ingest_args)
def _ingest(args: argparse.Namespace) -> int:
    """Build a train/validation/development/auxiliary dataset from your own maps (FITS or .npy)."""
    splits = _parse_splits(args.splits, _CountRequired())
    manifest = ingest.ingest(args.maps, args.out, crop=args.crop, crops_per_map=args.crops_per_map,
                             splits=splits, seed=args.seed, angle_deg=args.angle,
                             overwrite=args.overwrite, progress=not args.quiet)
    m = datasets.load_manifest(args.out)
    counts = ", ".join(f"{name} {e['n_maps']} from {e['n_parent_maps']}" for name, e in m["splits"].items())
    unused = f"; {len(m['unused_sources'])} parent maps unused" if m["unused_sources"] else ""
    print(f"wrote {args.out}: crops from parent maps {counts}, of {m['crop_size']}^2 px ({m['angle_deg']:.4g} deg, "
          f"{m['pixel_arcmin']:.4g} arcmin pixels){unused}; manifest {manifest}")
    return 0


# --------------------------------------------------------------------------------------- train
def _train_args(p: argparse.ArgumentParser) -> None:
    p.description = ("Train CosmoGAN on maps (.npy or FITS) with a named preset into a run directory, or continue "
                     "one with --resume. With a development set, the selection epochs keep the "
                     "lowest-scoring generators in best/ and candidates/.")
    p.add_argument("--preset", help="named configuration: paper, cpu64, tiny, or conditional cpu64-cond, cpu64-film, cpu64-pdf, "
                                    "cpu64-shape, tiny-cond, tiny-film, tiny-pdf, tiny-shape "
                                    "(--data: a cosmology grid from 'simulate --preset cosmo-grid'; not with --resume)")
    p.add_argument("--data", help="training maps, .npy (N, H, W) float32, or FITS maps of the preset's size "
                                  "(a file or a folder; stacked into OUT/maps/)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--epochs", type=positive_int, help="total main epochs of the run")
    p.add_argument("--seed", type=seed_arg, default=None, help="seed for weights, latents, flips, order")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--development", help="development maps for checkpoint selection (.npy or FITS)")
    p.add_argument("--angle", type=float,
                   help="side of a map in degrees (default: the FITS maps' ANGLE, else the preset's); the "
                        "selection statistics bin with it")
    p.add_argument("--augment-from-epoch", type=non_negative_int, default=None,
                   help="from this 1-based epoch on, turn each real map by a random symmetry of the "
                        "square (0: never, the paper; default: the preset's)")
    p.add_argument("--spectral-weight", type=float, default=None,
                   help="weight of the spectral term in G's loss (paper_repro.gan.spectral; 0: off, the "
                        "paper; default: the preset's); with --resume it changes the run from now on")
    p.add_argument("--spectral-from-epoch", type=positive_int, default=None,
                   help="first 1-based epoch with the spectral term (default: the preset's)")
    p.add_argument("--devices", type=_devices, default=None,
                   help="train data-parallel on N devices (or 'all'), the batch being the global batch; "
                        "the backend is chosen by KERAS_BACKEND (tensorflow, the default, or jax)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="compute precision of a new run (default: the preset's, float32 as the paper)")
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="start a new run's networks from another run's checkpoint (a run directory or "
                        "RUN/checkpoints/step-N) of the same topology; a conditional preset starts as "
                        "the unconditional model, its parameter weights at zero")


def _devices(text: str) -> int | str:
    if text == "all":
        return text
    return positive_int(text)


def _train_inputs(args: argparse.Namespace):
    """(preset, training maps, development maps) of ``train``: FITS maps stacked into OUT/maps/, and
    the preset's angle replaced by the maps' (FITS ANGLE, --angle or a dataset manifest) where it differs,
    so the run's statistics bin with it."""
    preset, data, development = args.preset, args.data, args.development
    fits = {k: v for k, v in (("train", data), ("development", development)) if ingest.is_fits_input(v)}
    angle = args.angle
    if angle is not None and not (math.isfinite(angle) and angle > 0):
        raise PaperReproError(f"--angle must be a positive number of degrees, got {angle}")
    if fits and (args.resume or not os.path.exists(os.path.join(args.out, "config.json"))):
        size = get_preset(preset).model.image_size if preset is not None else None
        paths, angle = ingest.stack_maps(fits, os.path.join(args.out, "maps"), angle_deg=args.angle, size=size,
                                         progress=True)
        data, development = paths.get("train", data), paths.get("development", development)
    if angle is None and data is not None:         # a dataset's maps: the angle in its manifest
        angle = certification.angle_from(data)
    if angle is not None and preset is not None and not math.isclose(angle, get_preset(preset).angle_deg,
                                                                     rel_tol=1e-3):
        preset = dataclasses.replace(get_preset(preset), angle_deg=float(angle))
        print(f"maps of {angle:.5g} deg on a side: the run's statistics use that angle (preset "
              f"{preset.name!r}: {get_preset(preset.name).angle_deg:.5g} deg)", flush=True)
    return preset, data, development


@command("train", _train_args)
def _train(args: argparse.Namespace) -> int:
    """Train a GAN (or continue a run): checkpoints, logs, selection of the best generator."""
    quiet_tensorflow()
    from .gan import training  # keras
    if args.preset is not None and isinstance(get_preset(args.preset), ConditionalPreset):
        preset, data, development = args.preset, args.data, args.development   # a cosmology-grid directory
    else:
        preset, data, development = _train_inputs(args)
    training.train(out=args.out, preset=preset, data=data, epochs=args.epochs,
                   seed=args.seed, resume=args.resume, development=development,
                   augment_from_epoch=args.augment_from_epoch, spectral_weight=args.spectral_weight,
                   spectral_from_epoch=args.spectral_from_epoch, scorer_factory=selection.scorer_for,
                   devices=args.devices, precision=args.precision, init_from=args.init_from)
    return 0


from . import cli_pick  # noqa: E402,F401  (registers pick, listed after train)


# ------------------------------------------------------------------------------------ generate
def _generate_args(p: argparse.ArgumentParser) -> None:
    p.description = ("Generate convergence maps from a run's generator (best by default) with a seed, "
                     "streamed into one .npy file (N, H, W) float32 in kappa units.")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--checkpoint", default=None,
                   help="epoch number, step-N (a kept candidate), 'last' or 'best' (default: best if present, else last)")
    p.add_argument("--n", type=positive_int, required=True, help="number of maps")
    p.add_argument("--seed", type=seed_arg, required=True, help="seed of the latents (same seed, same maps)")
    p.add_argument("--out", required=True, help="output .npy (N, H, W) float32")
    p.add_argument("--batch-size", type=positive_int, default=256, help="maps per generator call (default 256)")
    p.add_argument("--omega-m", type=float, help="Omega_m of the maps (conditional runs; with --sigma-8)")
    p.add_argument("--sigma-8", type=float, help="sigma_8 of the maps (conditional runs; with --omega-m)")
    p.add_argument("--strict", action="store_true",
                   help="refuse parameters outside the box the conditional model was trained over")


@command("generate", _generate_args)
def _generate(args: argparse.Namespace) -> int:
    """Generate maps from a run's generator into a .npy file."""
    quiet_tensorflow()
    from .gan import runs  # keras
    given = [v for v in (args.omega_m, args.sigma_8) if v is not None]
    if len(given) == 1:
        raise PaperReproError("give both --omega-m and --sigma-8, or neither")
    runs.generate_to_file(args.run, args.out, n=args.n, seed=args.seed, checkpoint=args.checkpoint,
                          batch_size=args.batch_size, params=given or None, strict=args.strict)
    return 0


# ------------------------------------------------------------------------------------ validate
def _inputs_args(p: argparse.ArgumentParser, *, seed_flag: str = "--seed") -> None:
    """The options of :func:`paper_repro.evaluation.reproduction.job_inputs` (validate, make-figures)."""
    p.add_argument("--run", help="run directory whose generator makes the maps (default: the shipped "
                                 "model in paper_repro/reference_model)")
    p.add_argument("--checkpoint", default=None, help="which generator of --run: epoch, step-N, 'last' or 'best' "
                                                      "(default: best if present, else last)")
    p.add_argument("--n", type=positive_int, help="maps to generate (default: as many as validation maps)")
    p.add_argument(seed_flag, type=seed_arg, default=20190101, dest="seed",
                   help="latent seed of the generated maps (default 20190101, the certified sample)")
    p.add_argument("--training", help="training maps .npy (or FITS, for validate) for the memorisation test "
                                      "and Fig. 7 (default: "
                                      "the run's training set, rebuilt from its record or read from its config)")
    p.add_argument("--data-root", help="folder for simulated datasets and generated maps (default: data/ "
                                       "in the working directory; says what it simulates, and how big, first)")


def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generated", help="generated maps .npy (N, H, W), or FITS maps (a file or a folder), "
                                       "instead of --run")
    _inputs_args(p)
    p.add_argument("--reference", action="append", help="validation maps .npy or FITS (simulations never used in "
                                       "training; default: the 'reference' dataset under --data-root, simulated "
                                       "once); repeated with --auxiliary, one validation/auxiliary pair per draw")
    p.add_argument("--auxiliary", action="append", help="independent simulation maps .npy or FITS (the baseline; "
                                       "default with the simulated reference: its auxiliary split); without one the "
                                       "reference set is split in two")
    p.add_argument("--draws", type=int, help="certify against K independent validation/auxiliary pairs (simulated "
                                             "from fresh seeds unless given as pairs) and give the verdict over them")
    p.add_argument("--draw-seed", type=int, help="first seed of the simulated draws: draw k simulates from seeds "
                                                 "D + 2k and D + 2k + 1 (default 8000; never a dataset preset's seed)")
    p.add_argument("--parents", type=int, help="parent maps per simulated validation and auxiliary set (default: "
                                               "the reference preset's 20; 200 crops each)")
    p.add_argument("--angle", type=float, help="side of a map in degrees (default: the FITS maps' ANGLE, "
                                               "else the manifest beside the reference maps)")
    p.add_argument("--report", help="write the full JSON report here")
    p.add_argument("--html", help="write a self-contained HTML page of the report here (verdicts, "
                                  "architecture, one figure per criterion)")
    _node_args(p)


def _node_args(p: argparse.ArgumentParser) -> None:
    """``validate``'s options for a conditional run (paper_repro.evaluation.grid_certification)."""
    g = p.add_argument_group("a conditional run, certified at a node of a cosmology grid")
    g.add_argument("--grid", help="cosmology grid ('simulate --preset cosmo-grid'): certify at one of its nodes, "
                                  "against the node's validation and auxiliary maps")
    g.add_argument("--node", help="the node's name (node-07, held-01, ...), or give its --omega-m and --sigma-8")
    g.add_argument("--omega-m", type=float, help="Omega_m of the maps to generate (with --sigma-8)")
    g.add_argument("--sigma-8", type=float, help="sigma_8 of the maps to generate (with --omega-m); "
                                                 "off the grid's nodes only with --reference and --auxiliary")


@command("validate", _validate_args)
def _validate(args: argparse.Namespace) -> int:
    """Certify generated maps against simulations; exit 0 pass, 1 fail, 2 bad input."""
    if args.html:
        html_report.check_output(args.html)      # before the certification, not after
    refs, auxs = args.reference or [], args.auxiliary or []
    over_draws = args.draws is not None or len(refs) > 1 or len(auxs) > 1
    if not over_draws and (args.draw_seed is not None or args.parents is not None):
        raise PaperReproError("--draw-seed and --parents go with --draws K")
    if over_draws:                              # bad K, pairs or seeds: before anything loads or runs
        draws.check_request(draws=args.draws, references=refs, auxiliaries=auxs, draw_seed=args.draw_seed,
                            parents=args.parents)
    quiet_tensorflow()
    if _validate_at_node(args, refs, auxs):
        return _finish_validate(args, args.report_at_node)
    if over_draws:
        report = draws.validate_draws(draws=args.draws, references=refs, auxiliaries=auxs, draw_seed=args.draw_seed,
                                      parents=args.parents, generated=args.generated, run=args.run,
                                      training=args.training, n=args.n, seed=args.seed, checkpoint=args.checkpoint,
                                      data_root=args.data_root, angle_deg=args.angle)
    else:
        with reproduction.job_inputs(generated=args.generated, run=args.run, reference=refs[0] if refs else None,
                                     auxiliary=auxs[0] if auxs else None, training=args.training, n=args.n,
                                     seed=args.seed, checkpoint=args.checkpoint, data_root=args.data_root,
                                     angle_deg=args.angle) as src:
            report = certification.certify(reproduction.load(src, angle_deg=args.angle), progress=True)
            if src.run is not None:
                report.speed = reproduction.generation_speed_of(src.run, src.checkpoint)
            report.architecture = src.architecture
    return _finish_validate(args, report)


def _validate_at_node(args: argparse.Namespace, refs: list, auxs: list) -> bool:
    """``validate`` with node flags or of a conditional run: certify at a node (or at parameters
    against given maps) into ``args.report_at_node``; False for the single-cosmology certification."""
    from .evaluation import grid_certification as gc

    if all(v is None for v in (args.grid, args.node, args.omega_m, args.sigma_8)) and not gc.is_conditional_run(args.run):
        return False
    if len(refs) > 1 or len(auxs) > 1 or args.draws is not None:
        raise PaperReproError("--draws certifies one cosmology; certify a conditional run at a node "
                              "without it (or with certify-grid)")
    args.report_at_node = gc.certify_at(
        grid=args.grid, node=args.node, params=None if args.omega_m is None and args.sigma_8 is None else
        (args.omega_m, args.sigma_8), run=args.run, generated=args.generated, reference=refs[0] if refs else None,
        auxiliary=auxs[0] if auxs else None, training=args.training, n=args.n, seed=args.seed,
        checkpoint=args.checkpoint, angle_deg=args.angle)
    print(gc.where(args.report_at_node))
    return True


def _finish_validate(args: argparse.Namespace, report) -> int:
    if args.report:
        report.write(args.report)
    if args.html:
        html_report.write_html(report.to_dict(), args.html)
    print(report.summary())
    if args.html:
        print(f"HTML report: {args.html}")
    return 0 if report.passed else 1


def _report_html_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("report", help="a report.json written by 'validate --report' or 'reproduce'")
    p.add_argument("--out", required=True, help="the HTML file to write")


@command("report-html", _report_html_args)
def _report_html(args: argparse.Namespace) -> int:
    """Write the self-contained HTML page of an existing JSON report (verdicts, architecture, figures)."""
    html_report.check_output(args.out)
    html_report.write_html(html_report.read_report(args.report), args.out)
    print(f"wrote {args.out}")
    return 0


# ------------------------------------------------------------------------------------ diagnose
def _diagnose_args(p: argparse.ArgumentParser) -> None:
    p.description = ("Has the discriminator of a run's latest checkpoint memorised the training set? "
                     "The fraction of training, rotated training, held-out and generated maps it calls "
                     "real; about equal for training and held-out maps unless it memorised.")
    p.add_argument("--run", required=True, help="run directory (its latest checkpoint's discriminator)")
    p.add_argument("--heldout", help="real maps never trained on .npy (default: the run's development set)")
    p.add_argument("--n", type=positive_int, default=4000, help="maps per set (default 4000)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the training-map sample and latents")


@command("diagnose", _diagnose_args)
def _diagnose(args: argparse.Namespace) -> int:
    """Has the discriminator memorised the training set? Its verdict on training vs held-out maps."""
    quiet_tensorflow()
    from .gan.diagnostics import discriminator_overfitting  # keras
    r = discriminator_overfitting(args.run, args.heldout, n=args.n, seed=args.seed)
    print(f"{'maps':26s} {'called real':>11s} {'mean logit':>10s} {'n':>6s}")
    for name, v in r.items():
        print(f"{name:26s} {v['real_fraction']:11.3f} {v['mean_logit']:+10.3f} {v['n']:6d}")
    gap = r["training"]["real_fraction"] - r["held-out"]["real_fraction"]
    print(f"training minus held-out: {gap:+.3f} (about 0 when the discriminator has not memorised the training set)")
    return 0


# ----------------------------------------------------------------------------------- reproduce
def _reproduce_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="figures", help="where report.json and Figures 1-8 go (default: figures)")
    p.add_argument("--no-figures", action="store_true", help="certify only")
    p.add_argument("--data-root", help="folder for the simulated datasets and generated maps (default: data/; "
                                       "about 0.75 GB, simulated once, said before)")


@command("reproduce", _reproduce_args)
def _reproduce(args: argparse.Namespace) -> int:
    """The main job: certify the shipped model on fresh simulations, write the report and Figures 1-8 of the same maps."""
    quiet_tensorflow()
    return reproduction.reproduce(args.out, figures=not args.no_figures, data_root=args.data_root)


from . import cli_cosmology  # noqa: E402,F401  (registers certify-grid and emulator-science, listed after these)


# ---------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paper-repro",
        description="CosmoGAN reproduction: simulate maps, train, generate, validate.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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


def build_make_figures_parser() -> argparse.ArgumentParser:
    """The ``make-figures`` command line (see :func:`make_figures_main`)."""
    p = argparse.ArgumentParser(
        prog="make-figures",
        description="Regenerate Figures 1-8 of Mustafa et al. (2019) for a run (PNG, PDF and a caption file "
                    "with the numbers behind each figure): the certified sample of 'paper-repro reproduce' "
                    "unless told otherwise. Simulates what is missing under --data-root, saying so first.")
    _inputs_args(p)
    p.add_argument("--data", help="dataset folder made by 'paper-repro simulate' to compare with (its "
                                  "validation and auxiliary splits; default: the reference dataset under --data-root)")
    p.add_argument("--out", default="figures", help="output folder (default: figures)")
    p.add_argument("--examples", type=positive_int, default=4, help="rows of Figure 7 (default 4)")
    p.add_argument("--paths", type=positive_int, default=3, help="slerp paths in Figure 8 (default 3)")
    p.add_argument("--steps", type=lambda t: int_at_least(t, 2, "an"), default=8,
                   help="maps per slerp path, at least 2 (default 8)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    return p


def make_figures_main(argv: Sequence[str] | None = None) -> int:
    """``make-figures``: Figures 1-8 (:func:`paper_repro.evaluation.reproduction.draw_figures`);
    a user's error: one line on stderr, exit 2."""
    args = build_make_figures_parser().parse_args(argv)
    quiet_tensorflow()
    try:
        written = reproduction.draw_figures(args.out, run=args.run, data=args.data, training=args.training,
                                            n=args.n, seed=args.seed, checkpoint=args.checkpoint,
                                            data_root=args.data_root, n_examples=args.examples,
                                            n_paths=args.paths, n_steps=args.steps, progress=not args.quiet)
    except PaperReproError as exc:
        print("make-figures: error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("make-figures: interrupted", file=sys.stderr)
        return 130
    n_files = sum(len(v) for v in written.values())
    print(f"wrote {n_files} files to {args.out}: "
          + ", ".join(f"fig{k}" for k in written if k != "captions") + " (png, pdf, txt) and captions.json")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
