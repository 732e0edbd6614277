"""What the rollout's steps touch besides the registry and the capture: alarms and their records."""

from __future__ import annotations

from typing import Any


class CloudWatchAlarms:
    """Which of a list of alarms are firing now."""

    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch

    def firing(self, names: list[str]) -> list[str]:
        found: list[str] = []
        for start in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
            page = self._cloudwatch.describe_alarms(AlarmNames=names[start : start + 100], StateValue="ALARM")
            found += [alarm["AlarmName"] for alarm in page.get("MetricAlarms", [])]
        return sorted(found)


class S3Records:
    """JSON records written under one bucket."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def put_json(self, key: str, body: bytes) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/json")
