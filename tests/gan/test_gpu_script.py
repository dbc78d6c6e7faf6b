"""The GPU script end to end on a CPU with the JAX backend and the tiny preset (slow: about 2-4 min)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_paper_preset_script_runs_end_to_end_on_cpu(tmp_path):
    out = tmp_path / "gpu"
    env = dict(os.environ, WHEELS="none")
    proc = subprocess.run(["bash", "benchmarks/gpu/paper_preset.sh", str(out), "1.5", "--preset", "tiny",
                           "--dataset", "tiny", "--k", "3", "--matmul", "256", "--workers", "2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    m = json.loads((out / "measurements.json").read_text())
    assert m["backend"] == "jax" and m["parents"]["n"] == 4
    for precision in ("float32", "mixed_bfloat16"):
        step = m["step"][precision]
        assert step["seconds_per_step"] > 0 and step["flops_per_step"] > 0
        assert 0 < step["efficiency_vs_matmul"] < 1.5
        assert m["generate"][precision]["maps_per_s"] > 0
    t = m["training"]
    rows = np.loadtxt(out / "loss.csv", delimiter=",", skiprows=1, ndmin=2)
    assert len(rows) == t["steps"] >= 4 * 3 and np.isfinite(rows).all()
    np.testing.assert_array_equal(rows[:, 0], np.arange(1, len(rows) + 1))
    assert t["projected_paper_hours"] > 0
    # the generator comes back in parts of at most 15 MiB and rebuilds
    assert all((out / name).stat().st_size <= 15 * 2 ** 20 + 128 for name in m["generator_files"])
    code = ("import sys; sys.path.insert(0, '.'); from benchmarks.gpu.paper_preset import load_generator; "
            f"g = load_generator('{out}', 'tiny'); import numpy as np; "
            "print(float(np.std(g(np.zeros((2, g.input_shape[-1]), 'float32'), training=False))))")
    rebuilt = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, KERAS_BACKEND="jax"),
                             capture_output=True, text=True, timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
