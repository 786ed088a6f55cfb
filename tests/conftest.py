"""Shared test setup: the verifier runs after every pass; `--device` picks the backend."""
import contextlib
import os

import pytest
from hypothesis import settings

os.environ.setdefault("FLOWJIT_VERIFY", "1")

# CI draws the same property-test examples every run, so a red CI always means a change
# broke something; runs elsewhere draw new examples and keep exploring.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu",
                     help="cpu (default) or cuda: where every jit without a device runs")


def pytest_configure(config):
    if config.getoption("--device") != "cpu":
        os.environ["FLOWJIT_DEVICE"] = config.getoption("--device")


def pytest_collection_modifyitems(config, items):
    try:
        import pycuda.driver as drv  # noqa: F401
        drv.init()
        has_gpu = drv.Device.count() > 0
    except Exception:
        has_gpu = False
    if not has_gpu:
        skip = pytest.mark.skip(reason="needs a CUDA GPU and pycuda")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(params=[0, 2], ids=["O0", "O2"])
def opt_level(request):
    """Run a test with the unoptimized and the fully optimized pipeline."""
    return request.param




@contextlib.contextmanager
def _x64(enabled: bool):
    """flowjit's enable_x64 (and JAX's, when JAX is installed, so that tests comparing with
    JAX compare under the same rule: some tests turn JAX's on for the whole process)."""
    import flowjit.config as config
    try:
        import jax
        jax_x64 = jax.enable_x64(enabled)
    except ImportError:
        jax_x64 = contextlib.nullcontext()
    with config.override("enable_x64", enabled), jax_x64:
        yield


@pytest.fixture
def x64():
    """Run a test with 64-bit types enabled (flowjit.config's enable_x64, as JAX's)."""
    with _x64(True):
        yield


@pytest.fixture
def no_x64():
    """Run a test with JAX's default 32-bit types, whatever FLOWJIT_ENABLE_X64 says."""
    with _x64(False):
        yield
