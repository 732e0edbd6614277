"""A training table in memory: named feature columns and the target, in row order.

Where it is kept and how it is read is functions/lake (Parquet parts and the snapshot of a run).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrainingTable:
    """Named feature columns and the target, in row order."""

    columns: dict[str, np.ndarray]
    target: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.target)
