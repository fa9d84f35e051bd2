"""The registry kept in git: GTO tag grammar, state, policy and release artifacts."""
