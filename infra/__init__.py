"""CDK constructs of Slipway, one per component, wired by `infra.stack.SlipwayStack` (built by `infra.app`).

infra/ imports the stage model (`stage`) and the runtime code it deploys (`functions`), never `slipway`.
"""
