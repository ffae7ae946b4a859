"""CEMNIST (Continual Extended MNIST): a deterministic toy benchmark for continual semantic segmentation.

>>> from cemnist_data import load_dataset, load_tensors
>>> ds = load_dataset("cemnist", task=2)                 # DatasetDict: train / validation / test
>>> images, masks = load_tensors("cemnist", task=2)      # uint8 torch tensors [N, 60, 60]
"""

from importlib.metadata import PackageNotFoundError, version as _version

from .loader import CemnistIntegrityError, cache_root, load_dataset, release_info, resolve_release, verify_release
from .mnist import MnistIntegrityError, load_mnist
from .release import build_release
from .spec import MODES, SPLITS, CemnistSpec, config_name, parse_setting
from .torch_data import load_tensors, to_numpy, to_tensors

try:
    __version__ = _version("cemnist")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = [
    "CemnistSpec",
    "CemnistIntegrityError",
    "MnistIntegrityError",
    "MODES",
    "SPLITS",
    "build_release",
    "cache_root",
    "config_name",
    "load_dataset",
    "load_mnist",
    "load_tensors",
    "parse_setting",
    "release_info",
    "resolve_release",
    "to_numpy",
    "to_tensors",
    "verify_release",
    "__version__",
]
