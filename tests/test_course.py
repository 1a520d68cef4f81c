"""The notebooks' shared helpers: mode switch and sample-clip lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from hartutor import course
from hartutor.errors import DataError


def test_mode_defaults_to_fast_and_reads_the_environment(monkeypatch):
    monkeypatch.delenv(course.MODE_VARIABLE, raising=False)
    assert course.course_mode() == "fast"
    monkeypatch.setenv(course.MODE_VARIABLE, " FULL ")
    assert course.course_mode() == "full"
    monkeypatch.setenv(course.MODE_VARIABLE, "turbo")
    with pytest.raises(ValueError, match="turbo"):
        course.course_mode()


def test_fixtures_are_found_beside_a_parent_folder(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(course.FIXTURES_VARIABLE, raising=False)
    videos = tmp_path / "shared" / "fixtures" / "videos"
    videos.mkdir(parents=True)
    (videos / "clip.avi").write_bytes(b"x")
    deep = tmp_path / "repo" / "tutorials"
    deep.mkdir(parents=True)
    assert course.fixtures_dir(deep) == tmp_path / "shared" / "fixtures"
    assert course.sample_clip("clip.avi", deep) == videos / "clip.avi"
    assert course.sample_clip("missing.avi", deep) is None


def test_fixtures_variable_wins_and_absence_is_none(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(course.FIXTURES_VARIABLE, str(tmp_path / "nowhere"))
    assert course.fixtures_dir(tmp_path) is None
    assert course.sample_clip("anything.avi", tmp_path) is None
    monkeypatch.setenv(course.FIXTURES_VARIABLE, str(tmp_path))
    assert course.fixtures_dir() == tmp_path


def test_full_mode_requirements_fail_early_with_every_fix(tmp_path: Path):
    from hartutor.errors import DataError

    course.require_full_mode()  # nothing asked: nothing missing
    with pytest.raises(DataError) as err:
        course.require_full_mode(weights=("xception_imagenet1k_tf",), ucf101=tmp_path / "ucf")
    message = str(err.value)
    assert "hartutor weights download xception_imagenet1k_tf" in message
    assert f"hartutor ucf101 prepare {tmp_path / 'ucf'}" in message
    assert "HARTUTOR_MODE=fast" in message


def test_check_says_right_wrong_and_not_answered(capsys):
    @course.exercise("test-double", "Double 21.")
    def _double(answer, *, base=21):
        return None if answer == 2 * base else f"{answer} is not twice {base}."

    assert course.check("test-double", 42)
    assert "correct" in capsys.readouterr().out
    assert not course.check("test-double", 41)
    assert "41 is not twice 21" in capsys.readouterr().out
    assert not course.check("test-double", 42, base=20)
    assert not course.check("test-double", ...)
    assert "not answered yet" in capsys.readouterr().out
    assert course.check("test-double", 42, quiet=True)
    assert capsys.readouterr().out == ""


def test_check_explains_an_answer_of_the_wrong_type(capsys):
    @course.exercise("test-length", "Give a list.")
    def _length(answer):
        return None if len(answer) == 3 else "three items, please."

    assert not course.check("test-length", 3)
    assert "could not be checked (TypeError" in capsys.readouterr().out


def test_unknown_exercise_and_double_registration_are_refused():
    with pytest.raises(course.HartutorError, match="no exercise 'nope'"):
        course.check("nope", 1)

    def first(answer):
        return None

    course.exercise("test-twice", "x")(first)
    with pytest.raises(ValueError, match="registered twice"):
        course.exercise("test-twice", "x")(lambda answer: None)


# --------------------------------------------------------------------------- notebook times


def _time(notebook: str, **changes: object) -> course.NotebookTime:
    values: dict = {
        "notebook": notebook,
        "wall_s": 40.9,
        "kernel_peak_mib": 977.0,
        "measured": "2026-12-07 11:43 UTC",
        "machine": "AMD EPYC, 2 cores",
        "torch_threads": 1,
        "others_cores": 0.4,
        "pretrained": "stand-ins",
        "commit": "6a939d2",
    }
    values.update(changes)
    return course.NotebookTime(**values)


def test_notebook_times_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "times.json"
    times = [_time("01_single_frame.ipynb"), _time("00_the_data.ipynb", others_cores=None)]
    course.write_notebook_times(times, path)
    assert course.notebook_times(path) == sorted(times, key=lambda t: t.notebook)
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, nothing left beside it


def test_a_partial_update_replaces_only_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "times.json"
    course.write_notebook_times(
        [_time("00_the_data.ipynb"), _time("01_single_frame.ipynb"), _time("07_late.ipynb")], path
    )
    new = _time("01_single_frame.ipynb", wall_s=30.0, measured="2026-12-07 12:30 UTC")
    record = course.update_notebook_times([new], path)
    assert record == course.notebook_times(path)
    by_name = {t.notebook: t for t in record}
    assert list(by_name) == ["00_the_data.ipynb", "01_single_frame.ipynb", "07_late.ipynb"]
    assert by_name["01_single_frame.ipynb"] == new
    assert by_name["00_the_data.ipynb"].measured == "2026-12-07 11:43 UTC"  # kept, own date
    assert course.update_notebook_times([new], tmp_path / "new.json") == [new]  # no file yet


_MISSING = object()


@pytest.mark.parametrize(
    ("text", "change", "problem"),
    [
        ("{not json", None, "cannot read notebook times"),
        ('{"format": "other", "notebooks": []}', None, "is not a 'hartutor notebook times 1'"),
        ('{"format": "hartutor notebook times 1"}', None, "exactly 'format' and a list"),
        ("", {"wall_s": -1}, "wall_s is -1, not a number >= 0.0"),
        ("", {"wall_s": "fast"}, "wall_s is 'fast', not a number"),
        ("", {"kernel_peak_mib": float("nan")}, "kernel_peak_mib is nan"),
        ("", {"pretrained": "maybe"}, "pretrained is 'maybe', not one of"),
        ("", {"torch_threads": True}, "torch_threads is True"),
        ("", {"notebook": "../x.ipynb"}, "is not a file name"),
        ("", {"commit": _MISSING}, "missing ['commit']"),
        ("", {"extra": 1}, "unknown fields ['extra']"),
        ("", "twice", "lists ['00_the_data.ipynb'] twice"),
    ],
)
def test_a_malformed_notebook_times_file_is_refused_in_one_line(
    tmp_path: Path, text: str, change: object, problem: str
) -> None:
    import json
    from dataclasses import asdict

    path = tmp_path / "times.json"
    row = asdict(_time("00_the_data.ipynb"))
    if change == "twice":
        text = json.dumps({"format": course.NOTEBOOK_TIMES_FORMAT, "notebooks": [row, row]})
    elif isinstance(change, dict):
        for key, value in change.items():
            if value is _MISSING:
                del row[key]
            else:
                row[key] = value
        text = json.dumps({"format": course.NOTEBOOK_TIMES_FORMAT, "notebooks": [row]})
    path.write_text(text)
    with pytest.raises(DataError) as caught:
        course.notebook_times(path)
    message = str(caught.value)
    assert problem in message and str(path) in message and "\n" not in message


def test_the_shipped_notebook_times_are_valid_and_cover_every_notebook() -> None:
    times = course.notebook_times(course.NOTEBOOK_TIMES)
    tutorials = Path(__file__).resolve().parents[1] / "tutorials"
    assert {t.notebook for t in times} == {p.name for p in tutorials.glob("*.ipynb")}


def test_the_notebook_times_table_says_each_verdict_and_the_total() -> None:
    times = [
        _time("00_the_data.ipynb", wall_s=10.0, kernel_peak_mib=400.0),
        _time("08_slow.ipynb", wall_s=301.0, kernel_peak_mib=900.0),
        _time("09_big.ipynb", wall_s=20.0, kernel_peak_mib=1100.0, machine="other CPU"),
    ]
    assert [t.within_limits for t in times] == [True, False, False]
    assert [t.minutes for t in times] == [1, 6, 1]
    lines = course.notebook_times_table(times, links=True).splitlines()
    assert lines[2].startswith("| [00_the_data](00_the_data.ipynb) | 1 | 10.0 | 400 | yes |")
    assert lines[3].count("**NO**") == 1 and lines[4].endswith("| other CPU |")  # two machines
    summary = course.notebook_times_summary(times)
    assert "take 331 s (6 min) together" in summary and "2 machines" in summary
