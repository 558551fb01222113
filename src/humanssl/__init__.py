"""humanssl: self-supervised pretraining and evaluation for human-centric vision."""

__version__ = "0.1.0"
