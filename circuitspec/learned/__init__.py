"""Learned activation-level interventions (issue 19; Stoehr et al., "Activation Scaling for Steering and
Interpreting Language Models").

``locations``: where an intervention acts (site ``attn_out`` / ``mlp_out`` / ``resid_post`` × layer ×
token role), torch-free. ``interventions``: the paper's three intervention types as small torch modules
with one signature (ActivScalar ``h·(1 + β·α)``, SteerVec ``h + β·v``, DynScalar ``α = gᵀh/‖h‖``).
``objective``: the three-term objective Ψ = E_m + λ_F·F + λ_M·M_1 and its evaluation metrics.
``train``: Adam on −Ψ, seeded; ``pareto``: λ grids and their Pareto front. ``store``: the learned
parameters as one safetensors file with their provenance (torch-free). The model passes (gradients
through a TransformerLens model) are ``circuitspec.engine.learning``; the claim that verifies a saved
intervention is ``circuitspec.engine.interventions.learned_scaling_claim``.
"""
