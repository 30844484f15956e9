"""The engine: load models, build prompt sets, plan and run interventions (imports torch)."""
