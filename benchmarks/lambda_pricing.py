"""AWS Lambda's prices, declared once, and what a warm invocation costs under them.

Source: the AWS Lambda pricing page (https://aws.amazon.com/lambda/pricing/),
us-east-1, Arm (Graviton2), first pricing tier: duration per GB-second and a
charge per request. Lambda bills each invocation's duration rounded up to a
whole millisecond, so a handler under 1 ms is billed as 1 ms.
"""

from __future__ import annotations

import math

USD_PER_GB_SECOND_ARM64 = 0.0000133334
USD_PER_MILLION_REQUESTS = 0.20
BILLING_INCREMENT_MS = 1.0
MB_PER_GB = 1024  # Lambda's GB-seconds count memory in GiB: 1,024 MB is 1 GB


def billed_ms(duration_ms: float) -> float:
    """The duration Lambda bills for one invocation: rounded up to the next whole millisecond."""
    return math.ceil(duration_ms / BILLING_INCREMENT_MS) * BILLING_INCREMENT_MS


def duration_usd(seconds: float, memory_mb: float) -> float:
    """The duration charge of `seconds` of compute at `memory_mb`, at the arm64 price (no rounding)."""
    return seconds * memory_mb / MB_PER_GB * USD_PER_GB_SECOND_ARM64


def usd_per_million_invocations(duration_ms: float, memory_mb: float) -> float:
    """A million invocations that each take `duration_ms`: their billed duration plus the request charge."""
    return 1e6 * duration_usd(billed_ms(duration_ms) / 1000, memory_mb) + USD_PER_MILLION_REQUESTS
