"""Read any checkpoint lazily: safetensors, PyTorch zip/legacy pickles, GGUF, ONNX, npz."""

from .base import Checkpoint, TensorFile, TensorInfo
from .resolve import detect_format, open_model

__all__ = ["Checkpoint", "TensorFile", "TensorInfo", "detect_format", "open_model"]
