"""Reads binarylm GGUF exports with ggml's own Python reader (PyPI `gguf`) and reports them.

Usage: gguf_check.py FILE.gguf [REFERENCE.gguf]   (prints a JSON report on stdout)

REPORT: {"metadata": {key: [value type names, outer first], ...},
         "values": {key: value} for the scalar and string keys,
         "tensors": [{"name", "shape" (ggml order, innermost first), "type"}],
         "errors": {tensor name: the largest |dequantized - reference| of the tensor, divided
                    by its block's step} for each quantized tensor, when REFERENCE (an f32 export
                    of the same model) is given}

A block's step is what one unit of its integers is worth before the f16 rounding of the scale:
max|w| / 127 for Q8_0 and max|w| / 8 for Q4_0 (the Rust test holds the bounds).
"""

import json
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType
from gguf.quants import dequantize


def main() -> None:
    reader = GGUFReader(sys.argv[1])
    metadata, values = {}, {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue  # the header, not a key-value pair
        metadata[key] = [t.name for t in field.types]
        if field.types and field.types[0] != GGUFValueType.ARRAY:
            v = field.contents()
            values[key] = v.item() if hasattr(v, "item") else v
    tensors = [
        {"name": t.name, "shape": [int(d) for d in t.shape], "type": t.tensor_type.name}
        for t in reader.tensors
    ]
    errors = {}
    if len(sys.argv) > 2:
        reference = {t.name: t for t in GGUFReader(sys.argv[2]).tensors}
        steps = {GGMLQuantizationType.Q8_0: 127.0, GGMLQuantizationType.Q4_0: 8.0}
        for t in reader.tensors:
            if t.tensor_type not in steps:
                continue
            ours = np.asarray(reference[t.name].data, dtype=np.float32).reshape(-1, 32)
            deq = dequantize(t.data, t.tensor_type).reshape(-1, 32)
            step = np.abs(ours).max(axis=1, keepdims=True) / steps[t.tensor_type]
            err = np.abs(deq - ours) / np.where(step > 0, step, 1.0)
            errors[t.name] = float(err.max())
    json.dump({"metadata": metadata, "values": values, "tensors": tensors, "errors": errors}, sys.stdout)


if __name__ == "__main__":
    main()
