"""ONNX export: :mod:`.tracing` (one symbolic trace, backward decomposed), :mod:`.translate`
(straight to the exporter's op translations), :mod:`.writer` (checker, metadata, file), and
:mod:`.torch_internals`, the one module that imports PyTorch internals."""
