"""CDK constructs of Slipway, one per component, wired by `infra.stack.SlipwayStack` (built by `infra.app`).

Nothing is imported here: the state machine definitions in this package are also
read by the local stack, which must not pay for loading the CDK.
"""
