"""The architecture is part of the certificate: the certified generator's layers, output shapes and
per-layer parameter counts are its preset's (Tables 1 and 2 for ``paper``, the scaled networks for
``cpu64``), derived from the preset's configuration by :mod:`paper_repro.evaluation.architecture`
without building a model; the output calibration layer is reported apart. Needs no maps: it runs in
seconds on its own (``pytest validation/test_architecture.py [--run RUN]``).
"""
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.evaluation import architecture
from paper_repro.evaluation.reproduction import REFERENCE_MODEL


@pytest.fixture(scope="module")
def entry(request):
    opt = request.config.getoption
    if opt("--generated") and not opt("--run"):
        pytest.skip("maps given as a file: no generator to check (--run RUN checks one)")
    return architecture.run_architecture(opt("--run") or REFERENCE_MODEL, opt("--checkpoint"))


def test_generator_matches_its_preset(entry):
    try:
        architecture.require_match(entry)
    except PaperReproError as exc:
        pytest.fail(str(exc))
    for row in entry["layers"]:
        assert row["found"] == row["expected"], row["name"]
    assert entry["trainable"] == entry["expected_trainable"]
    assert entry["non_trainable"] == entry["expected_non_trainable"]
    print("\n" + architecture.summary_line(entry))


def test_paper_preset_is_table_1(entry):
    if entry["preset"] != "paper":
        pytest.skip(f"preset {entry['preset']!r}: Table 1 is the paper preset's")
    assert entry["paper_table_1"] and all(r["agrees"] for r in entry["paper_table_1"]), entry["paper_table_1"]


def test_calibration_is_reported_apart(entry):
    cal = entry["calibration"]
    if cal is None:
        pytest.skip("the generator has no output calibration layer")
    size = entry["model_config"]["image_size"]
    assert cal["trainable"] == 0 and cal["non_trainable"] == 2 * size * size
    assert cal["output_shape"] == [size, size, 1]
