"""The artifacts bucket (model bundles, capture, reports) and the live-model pointer."""

from __future__ import annotations

import json

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from functions.core.layout import (
    BATCH_PREFIX,
    CAPTURE_ERRORS_PREFIX,
    CAPTURE_PREFIX,
    FEEDBACK_PREFIX,
    MODELS_PREFIX,
    REPORTS_PREFIX,
    RETRAIN_RUNS_PREFIX,
)
from infra.nag import acknowledge
from stage.names import ResourceNames

# How long captured rows are kept: capture/ objects, and the inference log they are shipped from.
CAPTURE_EXPIRY_DAYS = 90
# The pointer's value before the first promotion; the runtime writes the real one.
INITIAL_POINTER = json.dumps({"version": None})


class Storage(Construct):
    """Artifacts bucket with lifecycle rules and server access logs, plus the live-model pointer.

    The pointer is an SSM String parameter created with `{"version": null}`. CloudFormation
    rewrites it only when its CDK definition changes (name, description, tier, initial
    value), so an ordinary redeploy leaves a promoted pointer alone; changing the definition
    resets it, and the model must be promoted again (see docs/deploy.md).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        retain_data: bool,
        capture_expiry_days: int = CAPTURE_EXPIRY_DAYS,
        reports_expiry_days: int = 365,
        feedback_expiry_days: int = 400,
        runs_expiry_days: int = 400,
        capture_errors_expiry_days: int = 30,
        batch_expiry_days: int = 90,
        noncurrent_expiry_days: int = 30,
        access_logs_expiry_days: int = 365,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY
        auto_delete = not retain_data

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            bucket_name=names.access_logs_bucket,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(access_logs_expiry_days))
            ],
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )
        acknowledge(
            self.access_logs_bucket,
            "AwsSolutions-S1",
            "This bucket is the destination of the artifacts bucket's server access logs; "
            "logging it into itself would loop and logging it elsewhere only moves the problem.",
        )

        self.bucket = s3.Bucket(
            self,
            "ArtifactsBucket",
            bucket_name=names.artifacts_bucket,
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-capture", prefix=CAPTURE_PREFIX, expiration=Duration.days(capture_expiry_days)
                ),
                s3.LifecycleRule(
                    id="expire-reports", prefix=REPORTS_PREFIX, expiration=Duration.days(reports_expiry_days)
                ),
                # Labels a little over a year (a yearly cycle's worth of ground truth), each run's snapshot as
                # long (the lineage of the models trained then), Firehose's failed deliveries a month, batch
                # inputs and outputs a quarter: nothing under these prefixes is kept forever.
                s3.LifecycleRule(
                    id="expire-feedback", prefix=FEEDBACK_PREFIX, expiration=Duration.days(feedback_expiry_days)
                ),
                s3.LifecycleRule(
                    id="expire-retrain-runs", prefix=RETRAIN_RUNS_PREFIX, expiration=Duration.days(runs_expiry_days)
                ),
                s3.LifecycleRule(
                    id="expire-capture-errors",
                    prefix=CAPTURE_ERRORS_PREFIX,
                    expiration=Duration.days(capture_errors_expiry_days),
                ),
                s3.LifecycleRule(id="expire-batch", prefix=BATCH_PREFIX, expiration=Duration.days(batch_expiry_days)),
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(noncurrent_expiry_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
            ],
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )

        self._write_once_bundles(names, retain_data)

        self.live_pointer = ssm.StringParameter(
            self,
            "LivePointer",
            parameter_name=names.live_pointer_parameter,
            string_value=INITIAL_POINTER,
            description="Live model version of this stage; written by promotion and rollback, read by inference.",
            tier=ssm.ParameterTier.STANDARD,
        )
        self.live_pointer.apply_removal_policy(removal)

    def _write_once_bundles(self, names: ResourceNames, retain_data: bool) -> None:
        """Bundles under models/ are written once: every write must be conditional (If-None-Match), so no role can
        overwrite a version. Where data is retained (prod), no one but the break-glass role deletes one either."""
        bundles = self.bucket.arn_for_objects(f"{MODELS_PREFIX}*")
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="WriteBundlesOnce",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[bundles],
                conditions={"Null": {"s3:if-none-match": "true"}},
            )
        )
        if retain_data:
            break_glass = f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{names.break_glass_role}"
            self.bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="KeepBundles",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                    resources=[bundles],
                    conditions={"ArnNotLike": {"aws:PrincipalArn": break_glass}},
                )
            )
