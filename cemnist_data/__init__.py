"""CEMNIST (Continual Extended MNIST): deterministic continual-segmentation benchmark data."""
