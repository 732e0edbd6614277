"""The drift section's machinery at a small size: the wide table it trains on and the monitor's fresh process."""

from __future__ import annotations

import numpy as np

from benchmarks.drift import monitor_from_capture, widened_table
from functions.training.train import Bundle


def test_the_wide_table_keeps_the_real_columns_and_adds_noisy_copies_up_to_the_width() -> None:
    rng = np.random.default_rng(1)
    columns = {"a": rng.uniform(1, 2, 500), "b": rng.uniform(10, 20, 500)}

    wide = widened_table(columns, 7)

    assert list(wide) == ["a", "b", "a_1", "b_1", "a_2", "b_2", "a_3"]
    assert wide["a"] is columns["a"] and wide["b"] is columns["b"]
    ratio = wide["b_2"] / columns["b"]
    assert not np.array_equal(wide["b_2"], columns["b"]) and abs(ratio.mean() - 1) < 0.01
    assert 0.03 < ratio.std() < 0.07
    assert not np.array_equal(wide["a_1"], wide["a_2"])


def test_the_monitor_process_counts_every_captured_row(bundle: Bundle) -> None:
    seconds, peak_mb, capture_mb = monitor_from_capture(bundle.manifest, 2_000)

    assert 0 < seconds < 30 and 0 < peak_mb < 1024 and capture_mb > 0
