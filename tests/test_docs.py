"""The documentation does not drift from the repository: mechanical checks that can fail.

- every relative link and every backticked repository path in README.md, MODEL_CARD.md and docs/*.md
  names a file or folder that is tracked (paths of run outputs that left the tree must exist at the
  history commit the docs name);
- docs/modules.md names every module of the package, and only modules that exist;
- preset numbers quoted in README.md and MODEL_CARD.md equal ``paper_repro.config`` and the built
  networks' parameter counts;
- the commands and options in the docs' shell blocks exist, and the README's test command is CI's;
- no doc points outside the repository (``../shared``) or at a machine path, or speaks of work
  sessions; the model card stays short.
"""
from __future__ import annotations

import re
import shlex
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

from paper_repro.config import DATASET_PRESETS, PRESETS

ROOT = Path(__file__).resolve().parents[1]
#: run outputs and the resume checkpoint left the tree; the docs say they are at this commit
HISTORY_COMMIT = "3ae79eb520f6"
#: documents whose paths may all be historical (they describe earlier code and runs)
HISTORICAL_DOCS = {"docs/history.md"}
#: paths under these prefixes are run outputs: they are checked at HISTORY_COMMIT, not in the tree
HISTORICAL_PREFIXES = ("runs/",)
#: a backticked token is taken for a repository path when it starts with one of these
PATH_PREFIXES = ("paper_repro/", "docs/", "figures/", "tests/", "tests_lenstools/", "validation/",
                 "benchmarks/", ".ci/") + HISTORICAL_PREFIXES
MODEL_CARD_MAX_LINES = 150
#: the shipped models' cards (the conditional emulator's sits beside its inference files)
MODEL_CARDS = ("MODEL_CARD.md", "paper_repro/conditional_model/MODEL_CARD.md")


def _doc_files() -> list[str]:
    docs = ["README.md", *MODEL_CARDS]
    docs += sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))
    readme = ROOT / "docs" / "experiments" / "README.md"
    if readme.exists():
        docs.append(readme.relative_to(ROOT).as_posix())
    return docs


def _all_doc_texts() -> list[str]:
    """Every Markdown file a reader of the docs meets (top level, the model cards and all of docs/)."""
    docs = ["README.md", *MODEL_CARDS]
    docs += sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))
    return docs


def _read(rel: str) -> str:
    return (ROOT / rel).read_text(encoding="utf-8")


def _without_fences(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _fenced_blocks(text: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M)


def _flat(text: str) -> str:
    """Whitespace collapsed, so phrases wrapped across lines still match."""
    return re.sub(r"\s+", " ", text)


@lru_cache(maxsize=None)
def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


@lru_cache(maxsize=None)
def _tracked() -> frozenset[str] | None:
    """Files git tracks or would track (not ignored), and their folders; None outside a git checkout.

    Ignored paths (``data/``, ``runs/``, build outputs) do not count: a reader of a fresh clone
    does not have them."""
    try:
        out = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard")
    except OSError:
        return None
    if out.returncode != 0:
        return None
    names: set[str] = set()
    for f in filter(None, out.stdout.split("\0")):
        if not (ROOT / f).exists():        # deleted in the working tree, not yet committed
            continue
        names.add(f)
        parts = f.split("/")
        names.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return frozenset(names)


def _in_tree(rel: str) -> bool:
    rel = rel.rstrip("/")
    tracked = _tracked()
    if tracked is None:
        return (ROOT / rel).exists()
    return rel in tracked


def _history_available() -> bool:
    try:
        return _git("cat-file", "-e", f"{HISTORY_COMMIT}^{{commit}}").returncode == 0
    except OSError:
        return False


def _at_history_commit(rel: str) -> bool:
    return _git("cat-file", "-e", f"{HISTORY_COMMIT}:{rel.rstrip('/')}").returncode == 0


def _backticked_paths(text: str) -> list[str]:
    paths = []
    for span in re.findall(r"`([^`\n]+)`", _without_fences(text)):
        span = span.strip()
        if (span.startswith(PATH_PREFIXES) and not re.search(r"\s", span)
                and "..." not in span and not re.search(r"[<>*{}\[\]|$]", span)):
            paths.append(span.rstrip(".,;:"))
    return paths


def _links(rel_doc: str, text: str) -> list[tuple[str, str]]:
    """(as written, repository-relative target) of every relative Markdown link."""
    out = []
    base = (ROOT / rel_doc).parent
    for target in re.findall(r"\]\(([^)\s]+)\)", _without_fences(text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        resolved = (base / path).resolve()
        try:
            out.append((target, resolved.relative_to(ROOT).as_posix()))
        except ValueError:               # points outside the repository
            out.append((target, "../" + path))
    return out


# --- (a) links and repository paths ------------------------------------------------------------

@pytest.mark.parametrize("doc", _doc_files())
def test_links_point_at_tracked_files(doc):
    missing = [t for t, rel in _links(doc, _read(doc)) if rel.startswith("../") or not _in_tree(rel)]
    assert not missing, f"{doc}: links to files that are not in the repository: {missing}"


@pytest.mark.parametrize("doc", _doc_files())
def test_backticked_paths_exist(doc):
    text = _read(doc)
    missing = []
    for path in _backticked_paths(text):
        historical = doc in HISTORICAL_DOCS or path.startswith(HISTORICAL_PREFIXES)
        if _in_tree(path) or historical:
            continue
        missing.append(path)
    assert not missing, f"{doc}: paths that are not in the repository: {missing}"


@pytest.mark.parametrize("doc", _doc_files())
def test_historical_paths_exist_at_the_named_commit(doc):
    text = _read(doc)
    historical = [p for p in _backticked_paths(text) if not _in_tree(p)
                  and (doc in HISTORICAL_DOCS or p.startswith(HISTORICAL_PREFIXES))]
    if not historical:
        return
    assert HISTORY_COMMIT in text, (
        f"{doc} names paths that left the tree ({historical[:3]}...) but not the commit "
        f"{HISTORY_COMMIT} where they are")
    if not _history_available():
        pytest.skip(f"commit {HISTORY_COMMIT} is not in this clone (shallow?)")
    missing = [p for p in historical if not _at_history_commit(p)]
    assert not missing, f"{doc}: paths in neither the tree nor commit {HISTORY_COMMIT}: {missing}"


def test_the_resume_checkpoint_is_at_the_history_commit():
    card = _read("MODEL_CARD.md")
    assert f"git checkout {HISTORY_COMMIT} -- paper_repro/reference_model/checkpoints" in card
    if not _history_available():
        pytest.skip(f"commit {HISTORY_COMMIT} is not in this clone (shallow?)")
    listing = _git("ls-tree", "-r", "--name-only", HISTORY_COMMIT,
                   "paper_repro/reference_model/checkpoints").stdout.split()
    assert any(name.endswith("state.npz") for name in listing), listing


# --- (b) the module map ------------------------------------------------------------------------

def _package_modules() -> set[str]:
    pkg = ROOT / "paper_repro"
    return {p.relative_to(pkg).as_posix() for p in pkg.rglob("*.py")
            if p.name not in ("__init__.py", "__main__.py") and "__pycache__" not in p.parts}


def _mapped_modules() -> set[str]:
    text = _read("docs/modules.md")
    names = re.findall(r"`(?:paper_repro/)?((?:[a-z_][a-z0-9_]*/)*[a-z_][a-z0-9_]*\.py)`", text)
    return {n for n in names if not n.startswith(("tests/", "test_"))}


def test_module_map_names_every_module():
    missing = sorted(_package_modules() - _mapped_modules())
    assert not missing, f"docs/modules.md does not name these modules of paper_repro/: {missing}"


def test_module_map_names_only_modules_that_exist():
    stale = sorted(_mapped_modules() - _package_modules())
    assert not stale, f"docs/modules.md names modules that do not exist under paper_repro/: {stale}"


# --- (c) preset numbers quoted in README.md and MODEL_CARD.md -------------------------------------

QUOTING_DOCS = ("README.md", "MODEL_CARD.md")


def _num(s: str) -> float:
    return float(s.replace(",", ""))


def _quoted_numbers():
    t = PRESETS["cpu64"].training
    m = PRESETS["cpu64"].model
    data = DATASET_PRESETS["cpu"]
    ref = DATASET_PRESETS["reference"]
    n_train = data.n_crops("train")
    steps = (t.epochs + t.selection_epochs) * (n_train // t.batch_size)
    # (what, pattern, expected values of its groups)
    return [
        ("main + selection epochs", r"\b(\d+) \+ (\d+) epochs", (t.epochs, t.selection_epochs)),
        ("anneal_epochs", r"anneal_epochs = (\d+)", (t.anneal_epochs,)),
        ("annealed main epochs", r"last (\d+) main epochs", (t.anneal_epochs,)),
        ("first annealed epoch", r"tenfold from epoch (\d+)", (t.epochs - t.anneal_epochs + 1,)),
        ("epochs at the full rate", r"for epochs 1-(\d+), then a tenth", (t.epochs - t.anneal_epochs,)),
        ("anneal_factor", r"anneal_factor = (\d*\.?\d+)", (t.anneal_factor,)),
        ("d_lr_factor", r"d_lr_factor = (\d*\.?\d+)", (t.d_lr_factor,)),
        ("d_lr_factor_from_epoch", r"d_lr_factor_from_epoch = (\d+)", (t.d_lr_factor_from_epoch,)),
        ("spectral_weight", r"spectral_weight = (\d*\.?\d+)", (t.spectral_weight,)),
        ("spectral_from_epoch", r"spectral_from_epoch = (\d+)", (t.spectral_from_epoch,)),
        ("selection_candidates", r"selection_candidates = (\d+)", (t.selection_candidates,)),
        ("augment_from_epoch", r"augment_from_epoch = (\d+)", (t.augment_from_epoch,)),
        ("data_scale", r"data_scale = (\d*\.?\d+)", (t.data_scale,)),
        ("precise batch norm", r"(\d+) training-mode batches", (t.bn_recalibration,)),
        ("total steps", r"([\d,]+) steps of batch (\d+)", (steps, t.batch_size)),
        ("base filters", r"(\d+) base filters", (m.base_filters,)),
        ("training set", r"(\d+) parent maps x (\d+) crops = ([\d,]+) maps",
         (data.splits.train, data.crops_per_map, n_train)),
        ("certification sets", r"([\d,]+) validation and ([\d,]+) auxiliary maps",
         (ref.n_crops("validation"), ref.n_crops("auxiliary"))),
    ]


@pytest.mark.parametrize("what,pattern,expected", _quoted_numbers(), ids=[q[0] for q in _quoted_numbers()])
def test_quoted_preset_numbers_match_the_config(what, pattern, expected):
    found = []
    for doc in QUOTING_DOCS:
        for match in re.finditer(pattern, _flat(_read(doc))):
            values = tuple(_num(g) for g in match.groups())
            found.append((doc, match.group(0), values))
    assert found, f"no doc quotes the {what} any more (pattern {pattern!r}): update the test or the docs"
    wrong = [(doc, text) for doc, text, values in found
             if values != tuple(float(e) for e in expected)]
    assert not wrong, f"{what}: the config says {expected}, the docs say {wrong}"


def test_quoted_map_angle_matches_the_dataset():
    angle = DATASET_PRESETS["cpu"].crop_angle_deg
    found = [(doc, float(v)) for doc in QUOTING_DOCS
             for v in re.findall(r"\b(0\.2\d+) deg", _flat(_read(doc)))]
    assert found
    wrong = [(doc, v) for doc, v in found if abs(v - angle) > 6e-4]
    assert not wrong, f"a cpu64 map is {angle:.4f} deg; the docs say {wrong}"


@pytest.fixture(scope="module")
def parameter_counts():
    from paper_repro.gan.models import build_discriminator, build_generator, count_params
    return {name: (count_params(build_generator(name))[0], count_params(build_discriminator(name))[0])
            for name in ("cpu64", "paper")}


def test_quoted_parameter_counts_match_the_built_networks(parameter_counts):
    known = {n for pair in parameter_counts.values() for n in pair}
    g, d = parameter_counts["cpu64"]
    for doc in QUOTING_DOCS:
        text = _read(doc)
        flat = _flat(text)
        assert f"{g:,}" in flat and f"{d:,}" in flat, (
            f"{doc} does not quote the cpu64 parameter counts {g:,} / {d:,}")
        for sentence in re.split(r"(?<=[.;|])\s", flat):
            if not re.search(r"param|trainable", sentence, re.I):
                continue
            for n in re.findall(r"\b\d{1,3}(?:,\d{3}){2,}\b", sentence):
                assert _num(n) in known, f"{doc}: parameter count {n} is no preset's ({sentence!r})"


# --- commands -------------------------------------------------------------------------------

def _shell_commands(doc: str) -> list[list[str]]:
    commands = []
    for block in _fenced_blocks(_read(doc)):
        joined = re.sub(r"\\\n", " ", block)
        for line in joined.splitlines():
            line = line.split("#", 1)[0].strip()
            if "paper-repro " in line or line.startswith("make-figures"):
                line = line[line.index("paper-repro"):] if "paper-repro " in line else line
                commands.append(shlex.split(line.split("&&")[0]))
    return commands


def _help(argv: list[str], capsys) -> str:
    from paper_repro import cli
    with pytest.raises(SystemExit) as exc:
        if argv[0] == "make-figures":
            cli.make_figures_main(["--help"])
        else:
            cli.build_parser().parse_args(argv[1:2] + ["--help"])
    captured = capsys.readouterr()
    assert exc.value.code == 0, f"`{' '.join(argv[:2])} --help` failed: {captured.err.strip()}"
    return captured.out


@pytest.mark.parametrize("doc", QUOTING_DOCS)
def test_documented_commands_and_options_exist(doc, capsys):
    commands = _shell_commands(doc)
    assert commands or doc != "README.md"
    for argv in commands:
        if argv[:2] == ["paper-repro", "--version"]:
            continue
        text = _help(argv, capsys)
        for flag in (a.lstrip("[").split("=")[0] for a in argv if a.lstrip("[").startswith("--")):
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), (
                f"{doc}: `{' '.join(argv[:2])}` has no option {flag}")


def _tox_envs() -> set[str]:
    """Environment names tox.ini defines, with factor braces expanded (py{310,311}-test)."""
    names = set()
    for section in re.findall(r"^\[testenv:([^\]]+)\]", _read("tox.ini"), flags=re.M):
        parts = re.split(r"(\{[^}]*\})", section)
        expanded = [""]
        for part in parts:
            options = part[1:-1].split(",") if part.startswith("{") else [part]
            expanded = [e + o.strip() for e in expanded for o in options]
        names.update(expanded)
    return names


@pytest.mark.parametrize("doc", QUOTING_DOCS)
def test_documented_tox_environments_exist(doc):
    envs = _tox_envs()
    used = re.findall(r"\btox -e ([\w.-]+)", _read(doc))
    assert used or doc != "README.md"
    unknown = sorted(set(used) - envs)
    assert not unknown, f"{doc} names tox environments tox.ini does not define: {unknown}"


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = next(line.strip() for line in ci.splitlines() if line.strip().startswith("python -m pytest"))
    assert command in _read("README.md"), f"README.md does not give CI's test command {command!r}"


# --- (d) to (f): nothing outside the repository, no sessions, a short model card -----------------

@pytest.mark.parametrize("doc", _all_doc_texts())
def test_docs_do_not_point_outside_the_repository(doc):
    text = _read(doc)
    assert "../shared" not in text, f"{doc} cites ../shared, which readers of the repository cannot open"
    paths = re.findall(r"(?<![\w.~])/(?:work|home|root|tmp|Users|mnt)/[^\s`)]*", text)
    assert not paths, f"{doc} contains machine paths: {paths}"


@pytest.mark.parametrize("doc", _all_doc_texts())
def test_docs_describe_the_software_not_work_sessions(doc):
    hits = [line.strip() for line in _read(doc).splitlines() if re.search(r"\bsessions?\b", line, re.I)]
    assert not hits, f"{doc} speaks of work sessions: {hits[:3]}"


@pytest.mark.parametrize("card", MODEL_CARDS)
def test_model_card_is_short(card):
    lines = _read(card).count("\n")
    assert lines <= MODEL_CARD_MAX_LINES, (
        f"{card} has {lines} lines (at most {MODEL_CARD_MAX_LINES}): history goes to docs/history.md")
