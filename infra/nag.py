"""cdk-nag acknowledgements: one helper, so every accepted finding carries a reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

MIN_REASON_LENGTH = 40


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Accept finding `rule_id` on `construct` only (and its children), for `reason`."""
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"the acknowledgement of {rule_id} needs a reason a reviewer can check, got {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))
