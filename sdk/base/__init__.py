"""The base layer: what every other layer imports, and which imports no other layer.

- `errors`: the EdgeSDKError hierarchy (sdk.EdgeSDKError and friends name the problem).
- `fileio`: atomic writes and hashes; `tables`: text tables and JSON-able dataclasses;
  `limits`: the loaders' memory budget.
- `native`: the compiled extension (`sdk._native`), the edge-run binary, the CPU's features.
- `samples`: calibration / validation data as one `SampleSet` (arrays, image folders, files).
- `version`: `__version__`; `lazy`: names a package imports on first use (`lazy_names`).

Layers (docs/architecture.md): base < run < converters | devices < the face (sdk/*.py, sdk/cli).
"""
