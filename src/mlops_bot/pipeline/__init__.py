"""PR validation: train, evaluate on the holdout, compare with the baseline, gate."""
