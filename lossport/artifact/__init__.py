"""Exported artifacts as data: their metadata (written, read, schema-checked) and opening one
to run (ONNX Runtime or TorchScript, CPU or CUDA). Nothing in an artifact chooses what lossport
does beyond running the artifact itself."""
