"""The certification suite: ``pytest validation/ [--generated G.npy | --run RUN] --reference R.npy ...``.

With no options it certifies the shipped reference model on freshly simulated maps, as
``paper-repro reproduce`` does. Every set's statistics are computed once per session
(:func:`paper_repro.evaluation.certification.certify`); each test file checks one criterion.
"""
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "agg")

import pytest

_STATE = {}


def pytest_addoption(parser):
    g = parser.getgroup("paper_repro certification")
    g.addoption("--generated", help="generated maps .npy (N, H, W)")
    g.addoption("--run", help="run directory to generate maps from (best generator by default)")
    g.addoption("--reference", help="validation maps .npy")
    g.addoption("--auxiliary", help="independent simulation maps .npy (baseline)")
    g.addoption("--training", help="training maps .npy (memorisation criterion)")
    g.addoption("--angle", type=float, help="map side in degrees (default: from the manifest)")
    g.addoption("--report", help="write the JSON report here")
    g.addoption("--n-generate", type=int, help="maps to generate with --run")
    g.addoption("--generate-seed", type=int, default=20190101)


@pytest.fixture(scope="session")
def certification_inputs(request):
    from paper_repro.evaluation import certification
    from paper_repro.evaluation import reproduction

    opt = request.config.getoption
    run, gen, ref, aux, train = (opt("--run"), opt("--generated"), opt("--reference"),
                                 opt("--auxiliary"), opt("--training"))
    if gen is None and run is None and ref is None:
        run, gen, ref, aux, default_train = reproduction.default_inputs(n=opt("--n-generate"))
        train = train or default_train
    if ref is None or (gen is None and run is None):
        raise pytest.UsageError("give --reference and one of --generated / --run (or no options)")
    if gen is None:
        from paper_repro.maps.io import open_maps
        n = opt("--n-generate") or len(open_maps(ref, check_finite=False))
        tmp = tempfile.TemporaryDirectory(prefix="paper-repro-validation-")
        request.addfinalizer(tmp.cleanup)
        gen = reproduction.generated_maps(run, n, opt("--generate-seed"), Path(tmp.name) / "generated.npy")
    inputs = certification.prepare(gen, ref, aux, train, angle_deg=opt("--angle"))
    return run, inputs


@pytest.fixture(scope="session")
def report(certification_inputs):
    from paper_repro.evaluation import certification

    run, inputs = certification_inputs
    rep = certification.certify(inputs)
    _STATE["report"] = rep
    return rep


@pytest.fixture(scope="session")
def run_dir(certification_inputs):
    run, _ = certification_inputs
    if run is None:
        pytest.skip("generation speed needs --run (or no options: the shipped model)")
    return run


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--report", default=None)
    rep = _STATE.get("report")
    if path and rep is not None:
        rep.write(path)
        print(f"\n{rep.summary()}\nreport: {path}")
