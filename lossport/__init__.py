"""lossport: losses, the TIGAS scorer and your own PyTorch modules, exported to TorchScript and
ONNX (with gradient graphs), with numerical proof that every runtime computes the same outputs
and gradients."""

from lossport._version import __version__

__all__ = ["__version__"]
