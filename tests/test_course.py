"""The notebooks' shared helpers: mode switch and sample-clip lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from hartutor import course


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
