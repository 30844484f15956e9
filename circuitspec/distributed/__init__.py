"""Fan-out of verifications over a Ray cluster (``regress --ray``, ``verify FILES... --ray``).

``jobs`` (a job, its result, the worker-side group runner), ``resources`` (what a model group
declares), ``planning`` (the driver's checks before Ray starts), ``ray_backend`` (the only module
that talks to Ray, imported lazily), ``regress`` and ``verify`` (the two commands). Nothing here is
imported when the CLI starts; Ray is the ``ray`` extra (``pip install 'circuitspec[ray]'``).
"""
