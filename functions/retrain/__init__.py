"""The retrain pipeline: its steps (prepare, train, evaluate + gate, register, promote), trigger and rollback."""
