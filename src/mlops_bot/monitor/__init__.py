"""Production monitoring: the prediction log, late labels, decay checks and retraining triggers."""
