"""The HTML page of a certification: one self-contained file (figures inside, nothing fetched) with
every criterion's verdict, the architecture table and a figure per criterion; made by
``validate --html`` or from an existing report.json; bad paths are one-line errors."""
import base64
import json
import re

import numpy as np
import pytest

from paper_repro.cli import main
from paper_repro.config import get_preset
from paper_repro.evaluation import architecture, html_report
from tests.helpers import smooth_maps

ANGLE = "0.108"


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    """``validate --report --html`` on 32^2 maps whose generated set is 25% too bright (some
    criteria fail): (exit code, report dict, page, folder)."""
    root = tmp_path_factory.mktemp("html")
    for name, seed, amplitude in (("gen", 1, 0.0625), ("val", 2, 0.05), ("aux", 3, 0.05)):
        np.save(root / f"{name}.npy", smooth_maps(60, 32, seed=seed, amplitude=amplitude))
    code = main(["validate", "--generated", str(root / "gen.npy"), "--reference", str(root / "val.npy"),
                 "--auxiliary", str(root / "aux.npy"), "--angle", ANGLE,
                 "--report", str(root / "report.json"), "--html", str(root / "report.html")])
    return code, json.loads((root / "report.json").read_text()), (root / "report.html").read_text(), root


def _row(page: str, name: str) -> str:
    m = re.search(rf'<tr id="verdict-{name}">(.*?)</tr>', page, re.S)
    assert m, f"no verdict row for {name}"
    return m.group(1)


def test_page_has_every_criterion_and_its_verdict(validated):
    code, rep, page, _ = validated
    assert code == 1 and not rep["passed"]
    verdicts = {name: c["passed"] for name, c in rep["criteria"].items()}
    assert len(verdicts) >= 6 and True in verdicts.values() and False in verdicts.values()
    for name, passed in verdicts.items():
        row = _row(page, name)
        assert f"<td>{name}</td>" in row
        assert ("PASS" in row) == passed and ("FAIL" in row) == (not passed)
        worst = html_report.worst_test(rep["criteria"][name])
        assert worst["name"] in row
        if not passed:                     # the worst test of a failed criterion is a failed test
            assert not worst["passed"]
        assert f'id="criterion-{name}"' in page
    assert "<title>paper_repro certification: FAIL</title>" in page
    assert "no generator was checked" in page.lower()     # maps given as a file


def test_page_is_self_contained(validated):
    _, rep, page, _ = validated
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script" not in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == len(rep["criteria"])                # one figure per criterion
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_json_holds_what_the_page_draws(validated):
    _, rep, _, _ = validated
    assert rep["architecture"] is None
    s = rep["set_summaries"]["power_spectrum"]
    assert set(s["sets"]) == {"generated", "validation", "auxiliary"}
    k = len(s["labels"])
    for one in s["sets"].values():
        assert one["n"] == 60 and len(one["mean"]) == len(one["sd"]) == k
    # the generated maps are 25% brighter: their power about 1.25^2 times the validation maps'
    gen, val = (np.array(s["sets"][k]["mean"], float) for k in ("generated", "validation"))
    ratio = np.median(gen[val > 0] / val[val > 0])
    assert 1.4 < ratio < 1.7


def test_page_from_an_existing_report_json(validated, tmp_path, monkeypatch):
    _, rep, page, root = validated
    monkeypatch.setattr(html_report, "_png", lambda fig: "iVBORw0KGgo=")    # the tables, not the drawing
    assert main(["report-html", str(root / "report.json"), "--out", str(tmp_path / "again.html")]) == 0
    again = (tmp_path / "again.html").read_text()
    assert re.findall(r'<tr id="verdict-.*?</tr>', again, re.S) == re.findall(r'<tr id="verdict-.*?</tr>', page, re.S)
    # a report written before the per-set summaries and the architecture entry: z panels only
    old = {k: v for k, v in rep.items() if k not in ("set_summaries", "architecture")}
    path = html_report.write_html(old, tmp_path / "old.html")
    text = path.read_text()
    assert len(re.findall(r'src="data:image/png;base64,', text)) == len(rep["criteria"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.html", "old.html"]


def test_architecture_table_of_a_run():
    preset = get_preset("tiny")
    entry = architecture.compare(architecture.expected_generator(preset.model), preset, source="run/generator.keras")
    page = html_report.architecture_section(entry)
    assert "PASS" in page and "run/generator.keras" in page and f"{entry['trainable']:,}" in page
    assert "<td>deconv1</td><td>Conv2DTranspose</td><td>32 x 4 x 4</td><td>32 x 4 x 4</td>" in page
    bad = architecture.compare(architecture.expected_generator(preset.model)[:-1], preset, source="x")
    assert "FAIL" in html_report.architecture_section(bad) and "layer tanh (Activation(tanh)) is missing" in \
        html_report.architecture_section(bad)


@pytest.mark.parametrize("case", ["missing", "not json", "not a report", "out folder missing", "out is a folder"])
def test_report_html_bad_paths_are_one_line_errors(validated, tmp_path, capsys, case):
    _, _, _, root = validated
    report, out = root / "report.json", tmp_path / "r.html"
    if case == "missing":
        report = tmp_path / "none.json"
    elif case == "not json":
        report = tmp_path / "bad.json"
        report.write_text("{not json")
    elif case == "not a report":
        report = tmp_path / "other.json"
        report.write_text(json.dumps({"a": 1}))
    elif case == "out folder missing":
        out = tmp_path / "no" / "r.html"
    else:
        out = tmp_path
    before = sorted(tmp_path.iterdir())
    assert main(["report-html", str(report), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("paper-repro report-html: error: ") and "\n" not in err
    assert sorted(tmp_path.iterdir()) == before


def test_validate_checks_the_html_path_first(validated, tmp_path, capsys):
    """A bad --html path is refused before the certification runs (nothing read, nothing written)."""
    _, _, _, root = validated
    assert main(["validate", "--generated", str(tmp_path / "absent.npy"), "--reference", str(root / "val.npy"),
                 "--angle", ANGLE, "--html", str(tmp_path / "no" / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "does not exist" in err and "absent.npy" not in err
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic(validated, tmp_path, monkeypatch):
    _, rep, _, _ = validated
    path = tmp_path / "r.html"
    path.write_text("old page")

    def broken(fig):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(html_report, "_png", broken)
    with pytest.raises(RuntimeError):
        html_report.write_html(rep, path)
    assert path.read_text() == "old page" and list(tmp_path.iterdir()) == [path]
