"""mlops-bot: a GitHub-native MLOps bot and set of reusable GitHub Actions."""

__version__ = "0.1.0"
