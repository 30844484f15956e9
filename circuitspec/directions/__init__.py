"""Directions and subspaces as first-class objects (issue 18): torch-free geometry and storage.

``geometry``: mean-difference directions, PCA subspaces, principal angles and overlap, least-squares
and orthogonal-Procrustes maps between two residual streams with their held-out evaluation.
``store``: one ``.safetensors`` file per direction or subspace with its provenance and a content hash.
The engine side (collecting activations, steering with ``h + α·e``) is ``circuitspec.engine.steering``.
"""
