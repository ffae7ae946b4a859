"""Session-wide test environment: offline Hub, and every cache in a temporary folder.

Set before anything imports huggingface_hub / datasets, so the offline flag takes effect.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="cemnist-tests-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ["HF_HOME"] = str(_SESSION_TMP / "hf")
os.environ["HF_DATASETS_CACHE"] = str(_SESSION_TMP / "hf" / "datasets")
os.environ["CEMNIST_CACHE"] = str(_SESSION_TMP / "cemnist")
os.environ.setdefault("TQDM_DISABLE", "1")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_cache() -> Path:
    """The session's CEMNIST cache folder (``$CEMNIST_CACHE``)."""
    return Path(os.environ["CEMNIST_CACHE"])


@pytest.fixture(scope="session")
def release(shared_cache: Path):
    """The v1.0.0 release, freshly regenerated into the session cache (about 7 s on 2 cores)."""
    from cemnist_data.loader import resolve_release

    return resolve_release("cemnist", cache_dir=shared_cache, progress=False)


SMALL_SPEC = dict(train_per_task=24, validation_per_task=8, test_pool=40)
"""A custom build with the release's layout (33 splits) and few images: built in about 0.5 s, verified in well
under a second (the published release takes about 5 s to verify)."""


@pytest.fixture(scope="session")
def small_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a custom build of :data:`SMALL_SPEC`, for tests of what any release folder does (verify,
    load, logging, progress) that need not hash the published release. Copy it before changing it."""
    from cemnist_data import CemnistSpec, build_release

    out = tmp_path_factory.mktemp("small_release") / "rel"
    build_release(out, spec=CemnistSpec(**SMALL_SPEC), progress=False)
    return out


@pytest.fixture
def obey_file_modes() -> list[str]:
    """The command prefix under which a child process obeys file modes (a read-only folder stays read-only):
    nothing for a normal user; as root, util-linux ``setpriv`` without the capabilities that override file
    modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER). Skips the test as root without ``setpriv``."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without util-linux setpriv: file modes cannot make a folder read-only")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
