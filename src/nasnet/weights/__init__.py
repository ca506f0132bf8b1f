"""Weights on disk: one safe checkpoint reader and one state-dict check (io), the published PyTorch
layout (reference), our model files (model_file), deployment exports (export), and deterministic
weights for parity fixtures (seeded). Layouts and formats only; names of zoo models are the zoo's."""
