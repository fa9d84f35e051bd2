"""Serving and rollout: the model server, canary gates, the rollout controller and its targets."""
