"""The IAM exceptions this project accepts; docs/security.md mirrors this module, a test checks both.

Every Allow statement in every synthesized template is checked against these lists:
no action may be a wildcard (`*`, `service:*`) and no resource may be `*`, except as listed
here with the reason AWS leaves no narrower choice.
"""

from __future__ import annotations

# Statements allowed to use Resource "*", keyed by their exact set of actions.
WILDCARD_RESOURCE_STATEMENTS: dict[frozenset[str], str] = {
    frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"}): (
        "X-Ray trace upload (inference role, active tracing): these actions support no resource-level "
        "permissions, AWS requires Resource '*'."
    ),
    frozenset({"kms:Decrypt", "kms:GenerateDataKey"}): (
        "Alarm topic key policy, CloudWatch and AWS Budgets service principals, condition aws:SourceAccount: in a "
        "key policy '*' means the key the policy is attached to, nothing else."
    ),
    frozenset({
        "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups", "logs:DescribeResourcePolicies",
        "logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:UpdateLogDelivery",
    }): (
        "Step Functions execution logging (state machine roles): CloudWatch Logs' log-delivery actions support no "
        "resource-level permissions, AWS requires Resource '*'."
    ),
    frozenset({
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    }): (
        "X-Ray tracing of a state machine: these actions support no resource-level permissions, AWS requires "
        "Resource '*'."
    ),
    frozenset({
        "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey",
    }): (
        "Inference log key policy (logs.protect_inference), CloudWatch Logs service principal, condition "
        "kms:EncryptionContext:aws:logs:arn equal to that one log group: in a key policy '*' means this key."
    ),
}  # fmt: skip

# Resource-policy statements allowed a wildcard action, keyed by (resource type, action).
WILDCARD_ACTION_RESOURCE_POLICIES: dict[tuple[str, str], str] = {
    ("AWS::KMS::Key", "kms:*"): (
        "Alarm topic key policy, principal the account root: AWS's default key policy statement, which grants "
        "nothing by itself but lets IAM policies in this account manage and use the key; without it the key "
        "becomes unmanageable."
    ),
}

# Service trust policies without a confused-deputy condition (aws:SourceAccount, aws:SourceArn or
# sts:ExternalId), keyed by service principal; every other service role carries one.
UNCONDITIONED_TRUST: dict[str, str] = {
    "lambda.amazonaws.com": (
        "Function execution roles: a role is passed to Lambda with iam:PassRole, which cannot cross accounts, "
        "and Lambda documents no source condition for execution roles; an undocumented one risks every function."
    ),
    "apigateway.amazonaws.com": (
        "API Gateway's account-level logging role: passed in this account's settings only (iam:PassRole); "
        "API Gateway documents no source condition for it."
    ),
}

# s3:ListBucket statements allowed without an s3:prefix condition, keyed by role id prefix.
UNPREFIXED_LISTING: dict[str, str] = {
    "MonitoringCaptureDeliveryRole": (
        "Firehose's delivery role, as AWS documents it: Firehose checks the bucket (HeadBucket, which carries no "
        "prefix) before it writes; the role can write only under capture/ and capture-errors/."
    ),
}
