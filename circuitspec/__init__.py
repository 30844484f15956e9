"""circuitspec: declarative, statistically honest tests of circuit hypotheses in transformers."""

__version__ = "0.1.0"
