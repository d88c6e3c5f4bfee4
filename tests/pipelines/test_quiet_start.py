"""A normal start of ``gpuwatch pipeline`` at the default log level says little, and nothing alarming."""

from __future__ import annotations

import re


def test_a_normal_start_logs_no_library_chatter_no_error_and_no_control_codes(stack):
    pipeline = stack.spawn("pipeline", "pipeline", GPUWATCH_LOG_LEVEL="info")
    pipeline.wait_for_line("pipeline: ready")
    stack.simulate(2, 2, 30)  # some traffic: the timers and the sink run
    pipeline.stop()
    raw = pipeline.log_path.read_bytes()
    text = raw.decode(errors="replace")
    assert b"\x1b" not in raw, "terminal control codes in a log file"
    assert not re.search(r"\bERROR\b", text), text[-3000:]
    assert "Starting..." not in text and "| topic" not in text and "overlapping" not in text, text[-3000:]
    assert len(text.splitlines()) < 25, text[-3000:]


def test_library_chatter_is_still_there_at_debug(stack):
    pipeline = stack.spawn("pipeline", "pipeline", GPUWATCH_LOG_LEVEL="debug")
    pipeline.wait_for_line("pipeline: ready")
    pipeline.stop()
    assert "Starting..." in pipeline.output()


def test_no_spinner_codes_in_the_log_at_warning_level(stack):
    """Faust's spinner runs above INFO (as under `gpuwatch up` and the demo) and drew into the file."""
    pipeline = stack.spawn("pipeline", "pipeline", GPUWATCH_LOG_LEVEL="warning")
    pipeline.wait_for_line("pipeline: ready")
    pipeline.stop()
    raw = pipeline.log_path.read_bytes()
    assert b"\x1b" not in raw and b"ERROR" not in raw, raw[-2000:]
