"""The sampling noise and the sensitivity of the category drift statistics, which set their thresholds.

`python -m benchmarks.category_drift_null [--draws N]` draws windows from typical
domains of 2 to 20 categories (rare ones included; and one of 50) and prints, with
functions.core.drift's own statistics, per domain and window size: the 99.9th
percentile and the largest PSI and Jensen-Shannon distance over same-population
windows and how many of them would drift; then the value of the weakest 10-point
shift of one category's share, and how many shifted windows of 5,000 rows are missed. docs/monitoring.md quotes it.
"""

from __future__ import annotations

import argparse

import numpy as np

from functions.core.drift import DriftThresholds, category_noise, category_statistics


def _zipf(k: int, s: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, k + 1) ** s
    return weights / weights.sum()


def _with_rare(common: int, rare: int, share: float) -> np.ndarray:
    return np.array([(1 - rare * share) / common] * common + [share] * rare)


DOMAINS: dict[str, np.ndarray] = {
    "boolean 50/50": np.array([0.5, 0.5]),
    "boolean 90/10": np.array([0.9, 0.1]),
    "boolean 99/1": np.array([0.99, 0.01]),
    "3 uniform": np.full(3, 1 / 3),
    "5 skewed": np.array([0.4, 0.3, 0.15, 0.1, 0.05]),
    "10 uniform": np.full(10, 0.1),
    "10 zipf": _zipf(10, 1.0),
    "20 uniform": np.full(20, 0.05),
    "20 zipf": _zipf(20, 1.2),
    "20, 5 rare at 0.2 %": _with_rare(15, 5, 0.002),
    "8, 3 rare at 0.02 %": _with_rare(5, 3, 0.0002),
    "50 zipf": _zipf(50, 1.0),
}
SIZES = (200, 500, 1000, 5000)
SHIFT = 0.1
SHIFTED_ROWS = 5000


def shifted(shares: np.ndarray, category: int, by: float) -> np.ndarray:
    """`shares` with one category's share moved by `by` points, the others scaled to make up the difference."""
    target = shares[category] + by
    others = np.delete(np.arange(shares.size), category)
    out = shares.copy()
    out[others] *= (1 - target) / shares[others].sum()
    out[category] = target
    return out


def weakest_shift(shares: np.ndarray) -> np.ndarray:
    """Of all 10-point shifts of one category's share (up, or down where it can), the one with the lowest PSI."""
    candidates = [shifted(shares, i, SHIFT) for i in range(shares.size) if shares[i] + SHIFT <= 1]
    candidates += [shifted(shares, i, -SHIFT) for i in range(shares.size) if shares[i] >= SHIFT]
    return min(candidates, key=lambda moved: category_statistics(shares, moved * 1e6)[0])


def _statistics(
    shares: np.ndarray, population: np.ndarray, rows: int, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """(PSI, JS) of `draws` windows of `rows` values drawn from `population`, against `shares`."""
    counts = rng.multinomial(rows, population, size=draws).astype(np.float64)
    return np.array([category_statistics(shares, row) for row in counts])


def _alarms(stats: np.ndarray, rows: int, categories: int, thresholds: DriftThresholds) -> tuple[int, int]:
    """Windows whose PSI, and whose Jensen-Shannon distance, reach the threshold of their size."""
    noise_psi, noise_js = category_noise(rows, categories)
    psi_at, js_at = max(thresholds.category_psi, noise_psi), max(thresholds.category_js, noise_js)
    return int(np.count_nonzero(stats[:, 0] >= psi_at)), int(np.count_nonzero(stats[:, 1] >= js_at))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.category_drift_null", description=__doc__)
    parser.add_argument("--draws", type=int, default=10_000, help="windows per domain and size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    thresholds = DriftThresholds()
    print(f"thresholds: category_psi {thresholds.category_psi}, category_js {thresholds.category_js}; "
          f"{args.draws:,} same-population windows per domain and size")  # fmt: skip
    print(f"{'domain':22}{'rows':>6}{'PSI p99.9':>11}{'PSI max':>9}{'JS p99.9':>10}{'JS max':>8}"
          f"{'PSI at':>8}{'JS at':>7}{'alarms PSI/JS':>15}")  # fmt: skip
    for name, shares in DOMAINS.items():
        for rows in SIZES:
            stats = _statistics(shares, shares, rows, args.draws, rng)
            noise_psi, noise_js = category_noise(rows, shares.size)
            psi_alarms, js_alarms = _alarms(stats, rows, shares.size, thresholds)
            p_psi, p_js = np.quantile(stats, 0.999, axis=0)
            print(f"{name:22}{rows:6d}{p_psi:11.4f}{stats[:, 0].max():9.4f}{p_js:10.4f}{stats[:, 1].max():8.4f}"
                  f"{max(thresholds.category_psi, noise_psi):8.3f}{max(thresholds.category_js, noise_js):7.3f}"
                  f"{psi_alarms:5d}/{js_alarms:<5d}")  # fmt: skip
    print(f"\nweakest {SHIFT:.0%} shift of one category, {SHIFTED_ROWS:,}-row windows ({args.draws:,} each)")
    print(f"{'domain':22}{'PSI':>8}{'JS':>8}{'PSI min':>9}{'JS min':>8}{'missed':>8}")
    for name, shares in DOMAINS.items():
        moved = weakest_shift(shares)
        value_psi, value_js = category_statistics(shares, moved * 1e6)
        stats = _statistics(shares, moved, SHIFTED_ROWS, args.draws, rng)
        psi_alarms, js_alarms = _alarms(stats, SHIFTED_ROWS, shares.size, thresholds)
        print(f"{name:22}{value_psi:8.4f}{value_js:8.4f}{stats[:, 0].min():9.4f}{stats[:, 1].min():8.4f}"
              f"{args.draws - max(psi_alarms, js_alarms):8d}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
