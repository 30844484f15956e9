"""pytest settings for ``pytest hypotheses/`` (the circuitspec plugin makes every claim a test).

The ``*_wrong*.yaml`` hypotheses are deliberately wrong circuits (a decoy head, a wrong channel,
a missing node): their claims are *meant* to fail, and tests/ checks that they do. They are not
collected here, so ``pytest hypotheses/`` passes exactly when every true hypothesis holds.
"""

collect_ignore_glob = ["*_wrong*.yaml"]
