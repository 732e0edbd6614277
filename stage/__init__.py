"""The stage model, shared by the CDK app (infra/) and the CLI and local stack (slipway/).

- `stage.settings`: every deployment setting of a stage, read from cdk.json and validated once.
- `stage.names`: the physical name of every resource, derived from the settings.
- `stage.environments`: each function's environment variables, from settings and names.
- `stage.workflows`: the state machine definitions (retrain, batch) as plain ASL documents,
  deployed by CDK and run by the local stack alike.

Nothing here imports the CDK, boto3, infra/ or slipway/.
"""
