"""The benchmark's child-process measurement: figures from a command that works, one readable line
from one that fails."""

from __future__ import annotations

import sys

import pytest

from rddm.errors import RddmError
from rddm.evaluate.bench import measure


def test_measure_reports_seconds_and_peak():
    figures = measure([sys.executable, "-c", "bytearray(64 * 1024 * 1024)"])
    assert figures["seconds"] > 0
    if figures["peak_rss_mb"] is not None:  # GNU time installed
        assert figures["peak_rss_mb"] >= 64


def test_a_failing_command_is_one_line_naming_its_error():
    script = "import sys; print('working...', file=sys.stderr); sys.exit('error: 24MP.dng: damaged RAW')"
    with pytest.raises(RddmError) as caught:
        measure([sys.executable, "-c", script])
    message = str(caught.value)
    assert "\n" not in message
    assert "failed (exit 1)" in message
    assert message.endswith("error: 24MP.dng: damaged RAW")
