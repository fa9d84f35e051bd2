"""Rendering results for people: the PR comment, inline charts, PNG plots, report sections."""
