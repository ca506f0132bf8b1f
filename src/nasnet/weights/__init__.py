"""Weights on disk: one safe checkpoint reader and one state-dict check (io), format detection by content
(formats), what every importer shares (mapping: ImportInfo, name tables applied strictly; layout: the one
walk over a model's weighted layers that every foreign layout names), the published PyTorch layout
(reference), TensorFlow checkpoints (tensor_bundle over crc32c, sstable and bundle_files; tf_slim), Keras
.h5 files (keras_h5), safetensors (safetensors_io), our model files (model_file), deployment exports
(export), and deterministic weights for parity fixtures (seeded). Layouts and formats only; names of zoo
models, and which one a file holds, are the zoo's (nasnet.zoo.importer); docs/formats.md describes the
formats, docs/weight-layouts.md the layouts."""
