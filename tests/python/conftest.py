import pytest
import torch

import torch_ext  # noqa: F401  (registers torch.ops.torch_ext)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state."""
    torch.manual_seed(0)
    yield
