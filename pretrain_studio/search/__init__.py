"""Hyperparameter search: studies of Optuna trials, each trial an ordinary run (space.py, storage.py, driver.py)."""
