"""``gpuwatch agent --simulate`` says what it can inject and refuses a fault it would never inject."""

from __future__ import annotations

import pytest

from agents.simulator import FAULT_KINDS
from pipelines.cli import main


def test_help_lists_every_fault_kind(capsys):
    with pytest.raises(SystemExit):
        main(["agent", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for kind in FAULT_KINDS:
        assert kind in text


def test_a_fault_after_the_last_tick_is_refused_before_anything_runs(capsys):
    code = main(["agent", "--simulate", "1", "--gpus", "2", "--ticks", "30", "--bootstrap", "127.0.0.1:1",
                 "--fault", "thermal_runaway@node-0/1:30+10"])
    err = capsys.readouterr().err
    assert code == 2
    assert "starts at tick 30" in err and "--ticks" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, says", [
    (["--simulate", "2", "--seed", "-1"], "--seed"),
    (["--simulate", "1", "--gpus", "100000"], "--gpus"),
    (["--simulate", "99999999999999999999"], "--simulate"),
])
def test_sizes_and_seeds_the_simulator_cannot_run_are_refused_in_one_line(capsys, args, says):
    """A negative seed crashed in numpy, 100,000 GPUs in Kafka (a batch over the size limit), and 10^20 nodes
    hung building them: each now gets one line before anything runs."""
    code = main(["agent", *args, "--ticks", "3", "--bootstrap", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert says in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, says", [
    (["--dry-run"], "--dry-run applies to this host's agent"),  # was ignored: it published to Kafka
    (["--once"], "--once applies"),
    (["--config", "agent.yaml"], "--config applies"),
    (["--metrics-port", "9400"], "--metrics-port applies"),
    (["--interval", "nan"], "--interval must be from 0 to 3600"),
    (["--interval", "inf"], "--interval must be from 0 to 3600"),
])
def test_real_host_options_and_impossible_intervals_are_refused_with_simulate(capsys, args, says):
    code = main(["agent", "--simulate", "1", "--ticks", "2", *args, "--bootstrap", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert says in err and len(err.strip().splitlines()) == 1, err
