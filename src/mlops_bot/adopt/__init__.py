"""Adopting mlops-bot in a repository: `mlops-bot init` (data inspection, the config and workflows it
writes) and the release's action pinning."""
