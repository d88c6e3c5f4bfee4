"""``gpuwatch demo --home`` wipes only what a demo made: anyone else's directory is refused, untouched."""

from __future__ import annotations

from pipelines.cli import main
from pipelines.demo import DEMO_MARKER, demo_home_refusal


def test_a_directory_the_demo_did_not_make_is_refused_and_left_alone(tmp_path, capsys):
    (tmp_path / "important").mkdir()
    (tmp_path / "important" / "thesis.txt").write_text("years of work")
    assert main(["demo", "--home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no demo made it" in err and "important" in err
    assert (tmp_path / "important" / "thesis.txt").read_text() == "years of work"


def test_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("x")
    assert main(["demo", "--home", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err and f.read_text() == "x"


def test_new_empty_and_earlier_demo_homes_are_accepted(tmp_path):
    assert demo_home_refusal(tmp_path / "new") is None
    assert demo_home_refusal(tmp_path) is None  # empty
    (tmp_path / "kafka").mkdir()
    assert demo_home_refusal(tmp_path) is not None  # a real GPUWATCH_HOME looks just like this
    (tmp_path / DEMO_MARKER).write_text("")
    assert demo_home_refusal(tmp_path) is None
