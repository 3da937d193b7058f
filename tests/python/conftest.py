import os

import pytest
import torch

# The wheel, its virtual environment and examples/cpp built against it, once per session
# (imported, not pytest_plugins, which pytest refuses in a conftest below the rootdir).
from wheel_fixtures import examples, venv, wheel, wheel_cmake_prefix  # noqa: F401

import torch_ext  # registers torch.ops.torch_ext

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # only test_properties.py needs it (scripts/setup.sh installs it)
    settings = None

if settings is not None:
    # Property tests (test_properties.py). `ci` (the default): a bounded number of examples
    # per test, drawn from a fixed seed (derandomize), so every run tries the same inputs and
    # a failure reproduces; no example database. `dev`: more examples, random each run, the
    # database in .hypothesis/ replays earlier failures first. HYPOTHESIS_PROFILE picks one.
    _checks = [
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ]
    settings.register_profile(
        "ci",
        max_examples=60,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=_checks,
        print_blob=True,
    )
    settings.register_profile(
        "dev", max_examples=1000, deadline=None, suppress_health_check=_checks, print_blob=True
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# test_build.py reruns the loop suites with ATEN_CPU_CAPABILITY lowered: make sure it took.
if os.environ.get("TORCH_EXT_EXPECT_ISA"):
    assert torch_ext.build_info()["cpu_isa"] == os.environ["TORCH_EXT_EXPECT_ISA"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "starts_first: a long test, collected first so that a worker starts it at once"
    )


def pytest_collection_modifyitems(config, items):
    """Long tests (a build against another torch) first: pytest-xdist hands out work in
    collection order, and one started last would hold the run's end while a core idles."""
    items.sort(key=lambda item: item.get_closest_marker("starts_first") is None)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state."""
    torch.manual_seed(0)
    yield


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Runs a test once per available device. On CUDA, torch's factory functions (randn,
    zeros, nn.Linear's parameters, ...) create on the GPU for the test's duration, so a
    device-independent test runs there unchanged: the whole suite on a GPU machine."""
    if request.param == "cpu":
        yield request.param
    else:
        with torch.device(request.param):
            yield request.param
