"""The ``circuitspec`` command line (typer). ``validate``/``graph``/``schema`` never import torch."""
