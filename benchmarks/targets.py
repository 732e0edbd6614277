"""The performance targets of DESIGN.md ("Tables of targets"), declared once."""

from __future__ import annotations

WARM_ONE_ROW_P50_MS = 0.3
WARM_ONE_ROW_P99_MS = 1.0
WARM_SPEEDUP = 10.0
COLD_START_S = 0.6
COLD_START_SPEEDUP = 3.0
THOUSAND_ROWS_MS = 10.0
PACKAGE_MB = 120.0
LOCAL_LOOP_S = 60.0
