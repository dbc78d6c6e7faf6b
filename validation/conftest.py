"""The certification suite: ``pytest validation/ [--run RUN | --generated G.npy] [--reference R.npy ...]``.

With no options it certifies the shipped reference model on the maps ``paper-repro reproduce``
certifies: the inputs are resolved once by :func:`paper_repro.evaluation.reproduction.job_inputs`
(the same function ``paper-repro validate`` and ``reproduce`` call), every set's statistics are
computed once per session (:func:`paper_repro.evaluation.certification.certify`), and each test
file checks one criterion. Checks of the committed records (the shipped model's pick, calibration
and training record, the committed report and captions) need no certification and run in seconds:
``pytest validation/test_committed_records.py``.

Over independent draws (``--draws K [--draw-seed S] [--parents N]``, or ``--reference`` and
``--auxiliary`` given several times as pairs) the generated maps are certified against each pair, as
``paper-repro validate --draws K`` does (:func:`paper_repro.evaluation.draws.resolve_pairs`), and each
criterion's test asserts its verdict over the draws (:data:`paper_repro.evaluation.draws.RULE`).
"""
import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "agg")

import pytest  # noqa: E402

from paper_repro.errors import PaperReproError  # noqa: E402
from paper_repro.evaluation import certification, draws, reproduction  # noqa: E402
from paper_repro.evaluation.horizon import horizon_line  # noqa: E402

_STATE = {}


def pytest_addoption(parser):
    g = parser.getgroup("paper_repro certification")
    g.addoption("--generated", help="generated maps .npy (N, H, W) instead of --run")
    g.addoption("--run", help="run directory to generate maps from (default: the shipped model)")
    g.addoption("--checkpoint", help="which generator of --run (default: best if present, else last)")
    g.addoption("--reference", action="append", default=[],
                help="validation maps .npy (default: the simulated reference dataset); several, with as many "
                     "--auxiliary, for a verdict over those pairs")
    g.addoption("--auxiliary", action="append", default=[], help="independent simulation maps .npy (baseline)")
    g.addoption("--draws", type=int, help="certify against K independent simulated validation/auxiliary pairs")
    g.addoption("--draw-seed", type=int, help="first seed of the simulated draws (default 8000)")
    g.addoption("--parents", type=int, help="parent maps per simulated draw set (default: the preset's)")
    g.addoption("--training", help="training maps .npy (memorisation criterion; default: the run's)")
    g.addoption("--data-root", help="folder of simulated datasets and generated maps (default: data/)")
    g.addoption("--angle", type=float, help="map side in degrees (default: from the manifest)")
    g.addoption("--report", help="write the JSON report here")
    g.addoption("--n-generate", type=int, help="maps to generate (default: as many as validation maps)")
    g.addoption("--generate-seed", type=int, default=reproduction.GENERATION_SEED)


@pytest.fixture(scope="session")
def certification_inputs(request):
    """(the resolved :class:`~paper_repro.evaluation.reproduction.JobInputs`, the checked map sets)."""
    opt = request.config.getoption
    refs, auxs = opt("--reference"), opt("--auxiliary")
    pairs = seeds = about = None
    if opt("--draws") is not None or len(refs) > 1 or len(auxs) > 1:
        try:
            pairs, seeds, about = draws.resolve_pairs(
                draws=opt("--draws"), references=refs, auxiliaries=auxs, draw_seed=opt("--draw-seed"),
                parents=opt("--parents"), generated=opt("--generated"), run=opt("--run"),
                data_root=opt("--data-root"))
        except PaperReproError as exc:
            pytest.exit(f"error: {exc}", returncode=2)
        refs, auxs = [pairs[0][0]], [pairs[0][1]]
    elif opt("--draw-seed") is not None or opt("--parents") is not None:
        pytest.exit("error: --draw-seed and --parents set simulated draws; give --draws K", returncode=2)
    with reproduction.job_inputs(generated=opt("--generated"), run=opt("--run"), reference=(refs or [None])[0],
                                 auxiliary=(auxs or [None])[0], training=opt("--training"),
                                 n=opt("--n-generate"), seed=opt("--generate-seed"),
                                 checkpoint=opt("--checkpoint"), data_root=opt("--data-root")) as src:
        if pairs is not None:
            yield src, DrawRequest(pairs, seeds, about, opt("--angle"))
        else:
            yield src, reproduction.load(src, angle_deg=opt("--angle"))


@dataclasses.dataclass
class DrawRequest:
    """Pairs to certify the generated maps against, over draws (in place of one pair's loaded inputs)."""
    pairs: list
    seeds: list | None
    about: dict
    angle_deg: float | None


@pytest.fixture(scope="session")
def report(certification_inputs):
    src, inputs = certification_inputs
    if isinstance(inputs, DrawRequest):
        angle = inputs.angle_deg if inputs.angle_deg is not None else src.angle_deg
        rep = draws.certify_draws(src.generated, inputs.pairs, training=src.training, angle_deg=angle,
                                  seeds=inputs.seeds)
        rep.draws.update(inputs.about)
    else:
        rep = certification.certify(inputs)
    rep.architecture = src.architecture      # the generator against its preset (None for a file of maps)
    _STATE["report"] = rep
    return rep


@pytest.fixture(scope="session")
def job(certification_inputs):
    """The resolved inputs; skips a test that needs the generator when maps were given as a file."""
    src, _ = certification_inputs
    if src.run is None:
        pytest.skip("generation speed needs a generator (--run, or no options: the shipped model)")
    return src


def pytest_terminal_summary(terminalreporter):
    """Each criterion's verdict with its horizon n* (up to how many generated maps it would still pass)."""
    rep = _STATE.get("report")
    if rep is None:
        return
    if rep.draws is not None:
        terminalreporter.section(f"certification over {rep.draws['k']} draws: verdict per criterion")
        for name, c in rep.draws["criteria"].items():
            terminalreporter.write_line(f"{name:24s} {'PASS' if c['passed'] else 'FAIL'}  "
                                        f"passed in {c['passes']} of {c['draws']} draws")
        terminalreporter.write_line(f"rule: {rep.draws['rule']}")
        return
    terminalreporter.section("certification: verdict and horizon n* per criterion")
    for name, c in rep.criteria.items():
        terminalreporter.write_line(f"{name:24s} {'PASS' if c['passed'] else 'FAIL'}  {horizon_line(c)}")


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--report", default=None)
    rep = _STATE.get("report")
    if path and rep is not None:
        rep.write(path)
        print(f"\n{rep.summary()}\nreport: {path}")
