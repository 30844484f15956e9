"""Hypotheses naming several models: one view per model, cross-model claims, side-by-side reports."""
