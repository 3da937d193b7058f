import os

import pytest
import torch

import torch_ext  # registers torch.ops.torch_ext

# test_build.py reruns the loop suites with ATEN_CPU_CAPABILITY lowered: make sure it took.
if os.environ.get("TORCH_EXT_EXPECT_ISA"):
    assert torch_ext.build_info()["cpu_isa"] == os.environ["TORCH_EXT_EXPECT_ISA"]


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
