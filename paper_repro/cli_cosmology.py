"""The ``paper-repro`` subcommands across cosmology: ``certify-grid`` and ``emulator-science``
(the conditional emulator, docs/conditional.md)."""
from __future__ import annotations

import argparse

from .cli_base import command, int_at_least, positive_int, quiet_tensorflow, seed_arg
from .errors import PaperReproError


# -------------------------------------------------------------------------------- certify-grid
def _certify_grid_args(p: argparse.ArgumentParser) -> None:
    p.description = ("Certify a conditional emulator at every training and held-out node of a cosmology grid "
                     "(each node against its own validation and auxiliary maps) and write one table "
                     "(grid_certification.json, .md) and one figure (grid_certification.png). Each node's "
                     "report is kept in OUT/nodes/ as it finishes; a rerun skips finished nodes.")
    p.add_argument("--grid", required=True, help="cosmology grid ('simulate --preset cosmo-grid')")
    p.add_argument("--out", required=True, help="folder for the node reports, the table and the figure")
    p.add_argument("--run", help="conditional run whose generator makes the maps at each node's parameters")
    p.add_argument("--generated-from", help="instead of --run: a folder of maps per node, <node>.npy (N, H, W), "
                                            "with <node>_index.npy parent ids where the maps have parents")
    p.add_argument("--nodes", nargs="+", help="certify only these nodes (default: every node)")
    p.add_argument("--n", type=positive_int, help="maps per node (default: as many as the node's validation maps)")
    p.add_argument("--seed", type=seed_arg, default=20190101, help="latent seed at every node (default 20190101)")
    p.add_argument("--checkpoint", default=None, help="which generator of --run (default: best, else last)")
    p.add_argument("--no-memorisation", action="store_true",
                   help="leave out the memorisation test at the training nodes (faster)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


@command("certify-grid", _certify_grid_args)
def _certify_grid(args: argparse.Namespace) -> int:
    """Certify a conditional emulator at every node of a cosmology grid: one table, one figure; exit 0 when all pass."""
    quiet_tensorflow()
    from .evaluation import grid_certification

    table = grid_certification.certify_grid(
        args.grid, args.out, run=args.run, generated_from=args.generated_from, nodes=args.nodes, n=args.n,
        seed=args.seed, checkpoint=args.checkpoint, memorisation=not args.no_memorisation,
        progress=not args.quiet)
    print(grid_certification.markdown(table).split("\n\n")[-1].rstrip())
    print(f"wrote {args.out}/{grid_certification.TABLE}, {grid_certification.MARKDOWN} and {grid_certification.FIGURE}")
    done = [n["result"] for n in table["nodes"] if n["result"] is not None]
    return 0 if all(r["passed"] for r in done) else 1


# ---------------------------------------------------------------------------- emulator-science
def _emulator_science_args(p: argparse.ArgumentParser) -> None:
    p.description = ("Responses of the statistics to (Omega_m, sigma_8) at the centre node, emulator against "
                     "simulator, and parameter recovery at every held-out node with either as the model; "
                     "writes responses.{json,md}, recovery.{json,md}, summary.json and three figures to --out.")
    p.add_argument("--grid", required=True, help="cosmology-grid folder made by 'paper-repro simulate --preset cosmo-grid'")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="conditional run directory: its generator is the emulator")
    src.add_argument("--simulator", action="store_true",
                     help="the simulator stands in for the emulator (checks the machinery: ratios ~1, no bias)")
    p.add_argument("--checkpoint", default=None, help="which generator of --run (as for generate)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n-maps", type=lambda t: int_at_least(t, 3, "a >= 3"), default=None,
                   help="emulated maps per parameter point (default 2000; the report names a model whose own "
                        "noise is over a quarter of its posterior variance: then use more)")
    p.add_argument("--seed", type=seed_arg, default=None, help="seed of the emulated maps, the same at every point "
                                                           "(default 36036)")
    p.add_argument("--keep-statistics", action="store_true",
                   help="also write every map's statistics to --out/statistics.npz, to analyse again with "
                        "--statistics without generating")
    p.add_argument("--statistics", default=None, metavar="FILE",
                   help="analyse the statistics.npz of an earlier run of this emulator on this grid instead of "
                        "generating (its number of maps and seed hold; other --degree is fine)")
    p.add_argument("--degree", type=lambda t: int_at_least(t, 1, "a positive"), default=3,
                   help="total degree of the polynomial in log parameters fitted to each component's mean "
                        "over the nodes (default 3; it needs (d+1)(d+2)/2 nodes, use 1 on small grids)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")


@command("emulator-science", _emulator_science_args)
def _emulator_science(args: argparse.Namespace) -> int:
    """Responses and parameter recovery of a conditional emulator on a cosmology grid: tables and figures."""
    from .evaluation import emulator_science, emulators
    from .maps.cosmo_grid import load_cosmo_grid

    if args.statistics is not None and (args.n_maps is not None or args.seed is not None or args.keep_statistics):
        raise PaperReproError("--statistics analyses the maps of an earlier run: leave out --n-maps, --seed and "
                              "--keep-statistics")
    if args.simulator:
        emulator = emulators.SimulatorEmulator.from_grid(load_cosmo_grid(args.grid))
    else:
        quiet_tensorflow()
        emulator = emulators.GeneratorEmulator.from_run(args.run, args.checkpoint)
    result = emulator_science.run_science(args.grid, emulator, args.out, n_maps=args.n_maps or 2000,
                                          seed=36036 if args.seed is None else args.seed, degree=args.degree,
                                          progress=not args.quiet, statistics=args.statistics,
                                          keep_statistics=args.keep_statistics)
    print(emulator_science.headline(result))
    return 0
