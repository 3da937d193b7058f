"""The ops under PyTorch's transforms: the torch.func rules (grad, vjp, jacrev, hessian,
vmap) and the decompositions torch.compile's Inductor fuses. Imported with torch_ext, so
they are in place before any transform runs; eager mode, LibTorch and TorchScript keep the
C++ autograd."""

from . import decompositions, func  # noqa: F401
