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


def test_region_figure_uses_the_engines_tiling_at_random_positions(tiny_model_dir, tmp_path):
    from rddm.evaluate.bench import bench_roi
    from rddm.model.registry import load_pipeline
    from rddm.restore import packed_tiling

    figures = bench_roi(str(tiny_model_dir), tmp_path, repeats=3)
    assert figures["tiling"] == "{}/{}".format(*packed_tiling(load_pipeline(str(tiny_model_dir))))
    # A 512 px region on a grid of 256 packed px tiles touches 2 x 2, 2 x 3 or 3 x 3 of them.
    assert len(figures["roi_512_tiles"]) == 3 and set(figures["roi_512_tiles"]) <= {4, 6, 9}
    assert 0 < figures["roi_512_seconds"] <= figures["roi_512_worst_seconds"]
    assert figures["strength_change_ms"] > 0
