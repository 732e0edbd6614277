"""What a warm Lambda invocation costs under AWS Lambda's prices (benchmarks/aws_prices.py).

Duration per GB-second (Arm or x86) and a charge per request. Lambda bills each invocation's
duration rounded up to a whole millisecond, so a handler under 1 ms is billed as 1 ms.
"""

from __future__ import annotations

import math

from benchmarks.aws_prices import LAMBDA_USD_PER_GB_SECOND, LAMBDA_USD_PER_MILLION_REQUESTS

USD_PER_GB_SECOND_ARM64 = LAMBDA_USD_PER_GB_SECOND["arm64"]
USD_PER_MILLION_REQUESTS = LAMBDA_USD_PER_MILLION_REQUESTS
BILLING_INCREMENT_MS = 1.0
MB_PER_GB = 1024  # Lambda's GB-seconds count memory in GiB: 1,024 MB is 1 GB


def billed_ms(duration_ms: float) -> float:
    """The duration Lambda bills for one invocation: rounded up to the next whole millisecond."""
    return math.ceil(duration_ms / BILLING_INCREMENT_MS) * BILLING_INCREMENT_MS


def duration_usd(seconds: float, memory_mb: float, architecture: str = "arm64") -> float:
    """The duration charge of `seconds` of compute at `memory_mb` on `architecture` (no rounding)."""
    return seconds * memory_mb / MB_PER_GB * LAMBDA_USD_PER_GB_SECOND[architecture]


def usd_per_million_invocations(duration_ms: float, memory_mb: float, architecture: str = "arm64") -> float:
    """A million invocations that each take `duration_ms`: their billed duration plus the request charge."""
    return 1e6 * duration_usd(billed_ms(duration_ms) / 1000, memory_mb, architecture) + USD_PER_MILLION_REQUESTS
