"""Every tutorial notebook is committed clean and runs top to bottom headless in fast mode.

The run also checks what a student sees: no figure may reach the page as its text repr
(``<Figure size ... with N Axes>``), and a notebook must show at least as many pictures as it
builds figures (counted in the kernel by a hook the test injects into ``Figure.__init__``;
figures drawn into ``hartutor.widgets`` apps or into ``hartutor.viz.animate``'s HTML animations
are not counted).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
# Generous per-cell bound: a cell stuck on a hang fails instead of blocking CI forever.
CELL_TIMEOUT_S = int(os.environ.get("HARTUTOR_NOTEBOOK_CELL_TIMEOUT", "600"))

# Injected before the notebook's first cell: count the figures the kernel builds.
_COUNT_FIGURES = """
import matplotlib.figure as _hartutor_test_mf
import traceback as _hartutor_test_tb
_hartutor_test_built = []
_hartutor_test_init = _hartutor_test_mf.Figure.__init__
def _hartutor_test_counting_init(self, *args, **kwargs):
    _hartutor_test_init(self, *args, **kwargs)
    stack = [(f.filename.replace("\\\\", "/"), f.name) for f in _hartutor_test_tb.extract_stack()]
    drawn_elsewhere = any(  # into an app's widgets, or into an HTML animation
        name.endswith("hartutor/widgets.py")
        or (name.endswith("hartutor/viz.py") and func == "animate")
        for name, func in stack
    )
    if not drawn_elsewhere:
        _hartutor_test_built.append(1)
_hartutor_test_mf.Figure.__init__ = _hartutor_test_counting_init
"""
_REPORT_FIGURES = 'print("HARTUTOR-FIGURES", len(_hartutor_test_built))'
_FIGURE_REPR = "<Figure size"


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks found under {TUTORIALS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path: Path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    dirty = [
        index
        for index, cell in enumerate(notebook["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before "
        "committing (jupyter nbconvert --clear-output --inplace)"
    )


_EXERCISE = re.compile(r"\*\*Exercise ([0-9]+b?-[a-z0-9-]+)\.\*\*")


def exercise_layout_problems(notebook_name: str, cells: list) -> list[str]:
    """What breaks the exercise contract in a notebook's cells: each ``**Exercise NN-name.**``
    is followed, before the next one, by an answer cell (tag "answer", left at ``...``), a cell
    checking the answer, and a hidden solution cell (tag "solution") asserting its check; the
    id starts with the notebook's number and has a checker; every "# Solution" cell is hidden."""
    from hartutor.course import exercises

    registered = set(exercises())
    prefix = notebook_name.split("_", 1)[0] + "-"
    problems = []
    starts = [
        (i, m.group(1))
        for i, cell in enumerate(cells)
        if cell["cell_type"] == "markdown"
        for m in [_EXERCISE.search("".join(cell["source"]))]
        if m
    ]
    for n, (start, exercise_id) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(cells)
        code = [c for c in cells[start + 1 : end] if c["cell_type"] == "code"]
        tags = [set(c.get("metadata", {}).get("tags", [])) for c in code]
        text = ["".join(c["source"]) for c in code]
        if not exercise_id.startswith(prefix) or exercise_id not in registered:
            problems.append(f"{exercise_id}: not a registered id of this notebook ({prefix}...)")
        if not any("answer" in t and "= ..." in x for t, x in zip(tags, text, strict=True)):
            problems.append(f"{exercise_id}: no answer cell (tag 'answer', left at '...')")
        if not any(f'check("{exercise_id}", answer' in x for x in text):
            problems.append(f"{exercise_id}: no cell checks the student's answer")
        if not any(
            "solution" in t and f'assert check("{exercise_id}"' in x
            for t, x in zip(tags, text, strict=True)
        ):
            problems.append(f"{exercise_id}: no solution cell asserting its check")
    for i, cell in enumerate(cells):
        source = "".join(cell["source"]).lstrip()
        hidden = cell.get("metadata", {}).get("jupyter", {}).get("source_hidden")
        if cell["cell_type"] == "code" and source.startswith("# Solution") and not hidden:
            problems.append(f"cell {i}: a solution in plain view (set jupyter.source_hidden)")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_follows_the_contract(path: Path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert exercise_layout_problems(path.name, cells) == []


def test_the_exercise_contract_check_can_fail():
    def cell(kind: str, source: str, **metadata) -> dict:
        return {"cell_type": kind, "source": [source], "metadata": metadata}

    good = [
        cell("markdown", "**Exercise 00-clip-seconds.** How long?"),
        cell("code", "answer = ...  # seconds", tags=["answer"]),
        cell("code", 'check("00-clip-seconds", answer, clip=clip)'),
        cell(
            "code",
            '# Solution\nassert check("00-clip-seconds", 2.0, quiet=True)',
            tags=["solution"],
            jupyter={"source_hidden": True},
        ),
    ]
    assert exercise_layout_problems("00_the_data.ipynb", good) == []
    shown = [*good[:3], cell("code", good[3]["source"][0], tags=["solution"])]
    assert "plain view" in exercise_layout_problems("00_the_data.ipynb", shown)[0]
    answered = [good[0], cell("code", "answer = 2.0", tags=["answer"]), *good[2:]]
    assert "no answer cell" in exercise_layout_problems("00_the_data.ipynb", answered)[0]
    assert "not a registered id" in exercise_layout_problems("01_single_frame.ipynb", good)[0]


def figures_shown_as_text(cells: list) -> list[int]:
    """Indices of the cells that show a figure as its text repr instead of a picture."""
    found = []
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text = output.get("text", "") + "".join(data.get("text/plain", ""))
            if _FIGURE_REPR in text and "image/png" not in data:
                found.append(index)
    return found


def count_images(cells: list) -> int:
    """The number of PNG pictures among the cells' outputs."""
    return sum(
        "image/png" in output.get("data", {})
        for cell in cells
        for output in cell.get("outputs", [])
    )


def test_figure_checks_can_fail():
    as_text = {"output_type": "execute_result", "data": {"text/plain": "<Figure size 640x480>"}}
    as_png = {"output_type": "display_data", "data": {"image/png": "iVBO", "text/plain": "<Fig"}}
    printed = {"output_type": "stream", "name": "stdout", "text": "<Figure size 1x1 with 1 Axes>"}
    cells = [{"outputs": [as_text]}, {"outputs": [as_png]}, {"outputs": [printed]}]
    assert figures_shown_as_text(cells) == [0, 2]
    assert count_images(cells) == 1


def execute_counting_figures(notebook, path: Path) -> tuple[list, int]:
    """Run ``notebook`` (nbformat) in a fresh kernel from ``path``'s folder; return its executed
    cells and the number of figures it built (see the module docstring)."""
    import nbformat
    from nbclient import NotebookClient

    notebook.cells.insert(0, nbformat.v4.new_code_cell(_COUNT_FIGURES))
    notebook.cells.append(nbformat.v4.new_code_cell(_REPORT_FIGURES))
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    report = "".join(o.get("text", "") for o in notebook.cells[-1].get("outputs", []))
    return notebook.cells[1:-1], int(report.split("HARTUTOR-FIGURES")[1].split()[0])


def run_and_check_notebook(path: Path) -> list:
    """Run the notebook at ``path`` (see :func:`execute_counting_figures`) and check what a
    student sees: no cell raised, no figure shows as text, every figure built is shown as a
    picture. Returns the outputs of its code cells, for the caller's own checks."""
    import nbformat

    cells, built = execute_counting_figures(nbformat.read(path, as_version=4), path)
    outputs = [o for cell in cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors
    as_text = figures_shown_as_text(cells)
    assert not as_text, f"{path.name}: cells {as_text} show a figure as text, not as a picture"
    images = count_images(cells)
    assert images >= built, (
        f"{path.name}: {built} figures built but only {images} pictures shown; display each "
        "figure (end the cell with it, or display(fig))"
    )
    return outputs


@pytest.mark.notebook
def test_the_figure_count_catches_a_figure_never_shown(tmp_path: Path, monkeypatch):
    import nbformat

    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("import hartutor\nfrom matplotlib.figure import Figure"),
        nbformat.v4.new_code_cell("shown = Figure(); shown.add_subplot().plot([0, 1]); shown"),
        nbformat.v4.new_code_cell("hidden = Figure(); hidden.add_subplot().plot([1, 0])"),
    ]
    cells, built = execute_counting_figures(notebook, tmp_path / "probe.ipynb")
    assert built == 2 and count_images(cells) == 1  # the test below would fail this notebook
    assert figures_shown_as_text(cells) == []


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_fast_mode(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HARTUTOR_MODE", "fast")
    monkeypatch.setenv("MPLBACKEND", "Agg")  # no inline backend: figures must display anyway
    run_and_check_notebook(path)


#: Notebooks whose cells use the Kinetics-400 I3D of Binder's postBuild when it is cached: 05 runs
#: it on the real clips, 07 points there. 07b (the transfer world) reads no pretrained weights, only
#: the shipped tiny source checkpoints, so the cache changes nothing there.
KINETICS_I3D_NOTEBOOKS = sorted(TUTORIALS.glob("0[57]_*.ipynb"))


def test_the_kinetics_i3d_notebooks_are_05_and_07():
    assert [p.name[:3] for p in KINETICS_I3D_NOTEBOOKS] == ["05_", "07_"]


@pytest.mark.notebook
@pytest.mark.parametrize("path", KINETICS_I3D_NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_with_the_kinetics_i3d_cached_as_a_standin(
    path: Path, kinetics_i3d_standin_cache: Path, monkeypatch: pytest.MonkeyPatch
):
    """The cells' cached-weights path, on stand-in weights: they run, 05 shows the real clips'
    predictions and says the weights are random-valued stand-ins, 07 says where to see them."""
    monkeypatch.setenv("HARTUTOR_MODE", "fast")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("HARTUTOR_CACHE", str(kinetics_i3d_standin_cache))
    outputs = run_and_check_notebook(path)
    printed = "".join(o.get("text", "") for o in outputs)
    shown = "".join(str(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "is not in the cache" not in printed
    if path.name.startswith("05_"):
        assert "STAND-IN WEIGHTS" in printed and "random" in printed
        assert "v_BaseballPitch_g01_c01" in shown  # a real clip's rows
        assert "Table 1 on these clips" in printed
    else:
        assert "notebook 05" in printed


@pytest.mark.notebook
def test_the_index_renders_its_table_of_times_from_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The index's times cell shows what the record holds (here a made-up record, so a typed
    table could not pass), with each row's date and the course total."""
    import nbformat
    from nbclient import NotebookClient

    from hartutor.course import NOTEBOOK_TIMES_VARIABLE, NotebookTime, write_notebook_times

    record = tmp_path / "notebooks.json"
    common = {"machine": "Test CPU, 3 cores", "torch_threads": 1, "commit": "abc1234"}
    write_notebook_times(
        [
            NotebookTime(
                "00_the_data.ipynb",
                123.4,
                567.8,
                "2031-01-02 03:04 UTC",
                **common,
                others_cores=0.25,
                pretrained="absent",
            ),
            NotebookTime(
                "07_late_fusion.ipynb",
                61.0,
                1100.0,
                "2031-05-06 07:08 UTC",
                **common,
                others_cores=None,
                pretrained="real",
            ),
        ],
        record,
    )
    monkeypatch.setenv(NOTEBOOK_TIMES_VARIABLE, str(record))
    index = nbformat.read(TUTORIALS / "index.ipynb", as_version=4)
    cells = [c for c in index.cells if c.cell_type == "code" and "notebook_times(" in c.source]
    assert len(cells) == 1, "the index has one cell rendering the notebook times"
    index.cells = cells
    NotebookClient(index, timeout=CELL_TIMEOUT_S, kernel_name="python3").execute()
    shown = "".join(
        "".join(output.get("data", {}).get("text/markdown", "")) for output in cells[0].outputs
    )
    assert (
        "| [00_the_data](00_the_data.ipynb) | 3 | 123.4 | 568 | yes | 2031-01-02 03:04 UTC "
        "| 0.25 | absent |" in shown
    )
    assert (
        "| [07_late_fusion](07_late_fusion.ipynb) | 2 | 61.0 | 1100 | **NO** "
        "| 2031-05-06 07:08 UTC | unknown | real |" in shown
    )
    assert "Test CPU, 3 cores" in shown and "take 184 s (4 min) together" in shown
