"""A candidate's rollout: the steps of the rollout state machine (start a phase, judge it, finish)."""
