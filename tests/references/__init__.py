"""Slow plain-hook reimplementations the engine is checked against (never shipped in the package)."""
