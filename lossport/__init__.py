"""lossport: reference losses and the TIGAS scorer, exported to TorchScript and ONNX, with
numerical proof that every runtime computes the same outputs and gradients."""

__version__ = "0.1.0"
