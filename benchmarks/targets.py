"""The performance targets, declared once (DESIGN.md "Tables of targets", tightened by the cold-start issue).

Absolute figures on this project's 2-core machine, for the example model unless a
name says otherwise; ratios are against the naive handler measured in the same run.
"""

from __future__ import annotations

WARM_ONE_ROW_P50_MS = 0.2
WARM_ONE_ROW_P99_MS = 1.0
# What the handler adds to scoring (service.predict: validate, encode, one ONNX Runtime call, shape).
HANDLER_OVERHEAD_P50_MS = 0.1
THOUSAND_ROWS_MS = 8.0  # with every request captured, as dev deploys it
COLD_START_S = 0.4
COLD_START_SPEEDUP = 3.0
PACKAGE_MB = 120.0
LOCAL_LOOP_S = 60.0
# A million one-row predictions end to end at the dev stage's settings, capture sampled as in prod (USD).
COST_PER_MILLION_USD = {"http": 1.50, "function_url": 0.50}
# The monitor's drift report over 1,000,000 captured rows, in a fresh process (peak RSS of that process).
DRIFT_S = 3.0
DRIFT_MB = 512.0
DRIFT_WIDE_S = 10.0  # the same over 100 features
DRIFT_WIDE_MB = 512.0
