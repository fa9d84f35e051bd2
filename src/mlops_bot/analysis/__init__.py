"""Drift, fairness and reference profiles: pure numpy/scipy over tables, matching Evidently and fairlearn."""
