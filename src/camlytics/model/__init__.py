"""What a trained model is on the host, between the edge package and the stages.

- `modelfile`: the edge model file (`model.cml`): in-memory form, writer, host reader, locator.
- `int8ref`: the numpy reference of the int8 arithmetic (docs/int8.md) every runtime must match.
- `inputs`: `InputSpec` (ROI, input size, colour), `Arrays`, and the host's frame -> input tensor.
- `predictor`: the `Predictor` every runtime returns, and the runtime registry behind `load_predictor`.
- `student`, `onnx_export`: the float student (`student.pt`) and its ONNX form (these import PyTorch).

Nothing here imports a stage; runtimes defined in the stages register themselves (see `predictor`).
"""
