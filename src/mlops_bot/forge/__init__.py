"""Forges: the one interface (`base.Forge`) and its implementations (GitHub, local files)."""
