"""Circuit discovery: score every edge on the exploration prompts, keep the strongest, write a
hypothesis whose claims verify the found circuit on held-out prompts (``circuitspec discover``).

One algorithm per module (as auto-circuit does): :mod:`.eap` (edge attribution patching),
:mod:`.eap_ig` (with integrated gradients over the inputs), :mod:`.eap_ig_act` (over each
component's output), :mod:`.edge_patching` (each edge path-patched alone: exact, the default up to a
budget of edges); :mod:`.methods` names them and says why that default.
:mod:`.prune` keeps edges by threshold or top-k, :mod:`.measure` sets the claims' thresholds from
engine measurements, :mod:`.curve` measures faithfulness over circuit size with the engine's own
faithfulness, :mod:`.emit` writes the YAML and :mod:`.run` wires them (``--corrupt`` swaps the
corruption, :mod:`.session`; :mod:`.scoring` is one corruption's scoring step). Several
``--corrupt`` give one hypothesis with every corruption's edges (:mod:`.union`, :mod:`.emit_union`).
Results: docs/discover.md.
"""
