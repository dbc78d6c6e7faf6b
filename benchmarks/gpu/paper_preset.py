"""The paper preset on one accelerator, in one command of a few minutes (Keras' JAX backend).

Steps, each timed and written to ``--out`` as it finishes:
1. simulate the parent maps of the paper's training set (``ParentCrops.simulate``, CPU processes);
2. the paper's training step at float32 and at mixed bfloat16: seconds per step in the compiled
   k-step loop, FLOPs per step from XLA's cost analysis, and the fraction of a same-dtype matmul's
   rate measured in the same run;
3. generation: maps/s of G at inference, its FLOPs per map and efficiency likewise;
4. train the paper preset (``--precision``) for the minutes left, logging the losses every k steps
   (its timed steps are the run's first steps);
5. write measurements.json, loss.csv and the generator as generator.json + generator-part-N.npy
   (float32 weights cut into files of at most 15 MiB; :func:`load_generator` rebuilds it).

``python -m benchmarks.gpu.paper_preset --preset tiny --dataset tiny --minutes 0.5`` runs the same
steps on a CPU in under a minute (the test in tests/gan/test_gpu_script.py).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

PART_BYTES = 15 * 2 ** 20


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def timed(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``fn`` (which blocks until its result is ready)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_rate(dtype: str, n: int) -> float:
    """FLOP/s of an n x n x n matmul in ``dtype`` on the default device."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32).astype(dtype)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    return 2.0 * n ** 3 / timed(lambda: f(a).block_until_ready(), 5)


def flops_of(jitted, *args) -> float | None:
    """XLA's FLOP count of a jitted call (None where the backend gives none)."""
    try:
        cost = jitted.lower(*args).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost.get("flops")) if cost and cost.get("flops") else None
    except Exception:   # cost analysis is optional in XLA's backends
        return None


def save_generator(generator, out: Path) -> list[str]:
    """The generator's weights as float32 parts of at most PART_BYTES, plus generator.json."""
    weights = [np.asarray(w, np.float32) for w in generator.get_weights()]
    flat = np.concatenate([w.ravel() for w in weights])
    per = PART_BYTES // 4
    names = []
    for k in range(0, len(flat), per):
        name = f"generator-part-{k // per}.npy"
        np.save(out / name, flat[k:k + per])
        names.append(name)
    write_json(out / "generator.json", {"shapes": [list(w.shape) for w in weights], "parts": names})
    return names


def load_generator(folder: str | os.PathLike, preset: str = "paper"):
    """Rebuild the generator that :func:`save_generator` wrote into ``folder``."""
    from paper_repro.gan.models import build_generator

    folder = Path(folder)
    meta = json.loads((folder / "generator.json").read_text())
    flat = np.concatenate([np.load(folder / name) for name in meta["parts"]])
    weights, k = [], 0
    for shape in meta["shapes"]:
        size = int(np.prod(shape))
        weights.append(flat[k:k + size].reshape(shape))
        k += size
    g = build_generator(preset)
    g.set_weights(weights)
    return g


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for the measurements, loss curve and generator")
    ap.add_argument("--preset", default="paper", help="model/training preset (default: paper)")
    ap.add_argument("--dataset", default="paper", help="dataset preset whose parents are simulated")
    ap.add_argument("--parents", type=int, default=None, help="parent maps to simulate (default: all)")
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="processes simulating parents")
    ap.add_argument("--minutes", type=float, default=7.0, help="wall-clock budget of the whole run")
    ap.add_argument("--k", type=int, default=50, help="training steps per compiled call")
    ap.add_argument("--precision", default="mixed_bfloat16", help="precision of the training run")
    ap.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"],
                    help="precisions whose step and generation are timed")
    ap.add_argument("--matmul", type=int, default=8192, help="size of the reference matmul")
    ap.add_argument("--seed", type=int, default=20190101)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    results: dict = {"args": vars(args)}

    def save():
        results["elapsed_s"] = round(time.perf_counter() - t_start, 2)
        write_json(out / "measurements.json", results)

    # 1. parents (before JAX starts: the simulation forks processes)
    from paper_repro.config import get_dataset_preset, get_preset
    from paper_repro.maps.crops import ParentCrops

    t0 = time.perf_counter()
    source = ParentCrops.simulate(get_dataset_preset(args.dataset), "train", n_parents=args.parents,
                                  progress=False, workers=max(1, args.workers))
    results["parents"] = {"n": len(source.parents), "shape": list(source.parents.shape[1:]),
                          "crops": len(source), "seconds": round(time.perf_counter() - t0, 2),
                          "gigabytes": round(source.parents.nbytes / 1e9, 3)}
    log(f"simulated {results['parents']}")
    save()

    import jax
    import keras

    from paper_repro.gan.accelerated import DeviceLoop
    from paper_repro.gan.cosmogan import CosmoGAN
    from paper_repro.gan.devices import compute_on
    from paper_repro.gan.jax_step import multi_step

    results["device"] = str(jax.devices()[0].device_kind)
    results["backend"] = keras.backend.backend()
    preset = get_preset(args.preset)
    n = min(args.matmul, 8192)
    results["matmul_tflops"] = {d: round(matmul_rate(d, n) / 1e12, 2) for d in ("float32", "bfloat16")}
    log(f"matmul {results['matmul_tflops']} TFLOP/s on {results['device']}")
    save()

    # 2. the training step at each precision, 3. generation, 4. training for the minutes left (the
    #    run's precision comes last and its timed steps are the first of its training run)
    results["step"], results["generate"] = {}, {}
    reference = {"float32": "float32", "mixed_bfloat16": "bfloat16"}
    precisions = [p for p in args.precisions if p != args.precision] + [args.precision]
    def one_precision(precision: str) -> None:
        with compute_on(None, precision):
            gan = CosmoGAN.from_preset(preset, seed=args.seed)
            loop = DeviceLoop(gan, source, preset.training, args.seed, k=args.k)
            training = precision == args.precision
            curve = open(out / "loss.csv", "w") if training else None
            done = [0]

            def on_logs(n, logs, curve=curve, done=done):
                k = len(logs["d_loss"])
                for j in range(k):
                    done[0] += 1
                    if curve is not None:
                        curve.write(f"{done[0]},{logs['d_loss'][j]:.6f},{logs['g_loss'][j]:.6f},"
                                    f"{logs['d_real'][j]:.6f},{logs['d_fake'][j]:.6f}\n")
                if curve is not None:
                    curve.flush()

            if curve is not None:
                curve.write("step,d_loss,g_loss,d_real,d_fake\n")
            t0 = time.perf_counter()
            loop.run(args.k, on_logs=on_logs, epoch=0, start=0)           # compile + k steps
            compile_s = time.perf_counter() - t0
            per_call = timed(lambda: loop.run(args.k, on_logs=on_logs, epoch=loop.epoch, start=loop.start), 3)
            step_s = per_call / args.k
            state, fn = multi_step(gan, args.k, loop.batch_fn)
            flops = flops_of(fn, state.read(), np.int32(0), loop.epoch_data(0))
            rate = reference[precision]
            entry = {"seconds_per_step": step_s, "compile_and_first_call_s": round(compile_s, 2),
                     "maps_per_s": preset.training.batch_size / step_s}
            if flops:
                entry["flops_per_step"] = flops / args.k
                entry["efficiency_vs_matmul"] = flops / args.k / step_s / (results["matmul_tflops"][rate] * 1e12)
            results["step"][precision] = entry
            log(f"step {precision}: {entry}")
            save()

            g = jax.jit(lambda w, z: gan.generator.stateless_call(w[0], w[1], z, training=False)[0])
            w = ([v.value for v in gan.generator.trainable_variables],
                 [v.value for v in gan.generator.non_trainable_variables])
            z = jax.random.normal(jax.random.PRNGKey(1), (256, preset.model.latent_dim))
            g(w, z).block_until_ready()
            sec = timed(lambda: g(w, z).block_until_ready(), 5)
            gflops = flops_of(g, w, z)
            entry = {"maps_per_s": 256 / sec}
            if gflops:
                entry["flops_per_map"] = gflops / 256
                entry["efficiency_vs_matmul"] = gflops / sec / (results["matmul_tflops"][rate] * 1e12)
            results["generate"][precision] = entry
            log(f"generate {precision}: {entry}")
            save()
            if not training:
                return

            left = args.minutes * 60 - (time.perf_counter() - t_start) - 20
            t0 = time.perf_counter()
            if left > 0:
                loop.run(10 ** 9, on_logs=on_logs, epoch=loop.epoch, start=loop.start, time_limit_s=left)
            curve.close()
            seconds = time.perf_counter() - t0
            steps = done[0]
            trained = steps - 4 * args.k
            per_step = seconds / trained if trained else step_s
            paper_steps = 47 * (1000 * 200 // preset.training.batch_size)   # 47 epochs of 200,000 crops
            results["training"] = {
                "precision": precision, "steps": steps, "seconds_after_timing": round(seconds, 2),
                "seconds_per_step": per_step, "steps_per_epoch": loop.steps_per_epoch,
                "paper_steps": paper_steps, "projected_paper_hours": paper_steps * per_step / 3600}
            last = np.loadtxt(out / "loss.csv", delimiter=",", skiprows=1, ndmin=2)[-1]
            results["training"].update(last_d_loss=float(last[1]), last_g_loss=float(last[2]))
            log(f"trained {results['training']}")
            results["generator_files"] = save_generator(gan.generator, out)
    for precision in precisions:
        one_precision(precision)
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
