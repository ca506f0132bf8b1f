"""safetensors files: timm / Hugging Face hub downloads and our own models, read without pickle.

What is read (`resolve`, then `read_safetensors`):

* a ``.safetensors`` file;
* a Hugging Face hub snapshot folder holding ``model.safetensors`` (and usually ``config.json``),
  e.g. ``~/.cache/huggingface/hub/models--timm--nasnetalarge.tf_in1k/snapshots/<commit>/``, whose
  files are often symlinks into ``../../blobs/``;
* the repository's cache root ``models--timm--nasnetalarge.tf_in1k/``: the snapshot named by
  ``refs/main`` when there is one, else the newest snapshot holding ``model.safetensors``.

Key layouts: timm's / pretrainedmodels' NASNet-A (``conv0.conv.weight`` ... ``last_linear``; mapped by
reference.py), and ours - with our config in the file's metadata (what `save_safetensors` writes;
`read_model_metadata` reads it back), or without it, as a plain state dict, when the caller names
the zoo model (`nasnet.zoo.importer` chooses between them).

Classes: a classifier with 1001 rows is TensorFlow's head, class 0 "background"; it becomes 1000
classes unless the background is kept. timm records such a head in its pretrained config as
``label_offset = 1`` (with ``num_classes = 1000``); `hub_facts` reads ``config.json`` for it and
`check_label_offset` checks it against the weights. timm's own export (``save_for_hf``) drops
``label_offset`` and records the classifier's real size, which the 1001-row rule covers as well.

The ``safetensors`` package reads the file (memory-mapped, no code execution); its errors become one
line naming the file. It is an optional dependency (``pip install 'nasnet[weights]'``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch

from ..atomic import replacing
from ..errors import NasnetError, first_line
from ..model.network import ModelConfig, NASNet
from ..model.preprocessing import Preprocessing
from .formats import SAFETENSORS
from .mapping import BACKGROUND_CLASSES

FORMAT = SAFETENSORS
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
META_FORMAT = "nasnet.format"             # metadata keys of our own files (strings, as safetensors wants)
META_CONFIG = "nasnet.model_config"
META_PREPROCESSING = "nasnet.preprocessing"
META_SOURCE = "nasnet.source"
OUR_FORMAT = "nasnet-model"


# --------------------------------------------------------------------------------------------
# Finding the file
# --------------------------------------------------------------------------------------------
def _snapshot_of_repo(root: Path) -> Path:
    where = repr(str(root))
    snapshots = root / "snapshots"
    ref = root / "refs" / "main"
    if ref.is_file():
        commit = ref.read_text().strip()
        if (snapshots / commit / WEIGHTS_NAME).exists():
            return snapshots / commit
    candidates = [d for d in snapshots.iterdir() if (d / WEIGHTS_NAME).exists()] if snapshots.is_dir() else []
    if not candidates:
        raise NasnetError(f"{where}: no snapshot with {WEIGHTS_NAME} in this hub cache folder")
    return max(candidates, key=lambda d: (d / WEIGHTS_NAME).stat().st_mtime)


def resolve(path: str | Path) -> tuple[Path, Path | None]:
    """(the .safetensors file, the config.json beside it or None) for a file, snapshot or repository folder."""
    path = Path(path).expanduser()
    where = repr(str(path))
    if path.is_dir():
        if (path / "snapshots").is_dir() or (path / "refs").is_dir():
            path = _snapshot_of_repo(path)
        files = [path / WEIGHTS_NAME] if (path / WEIGHTS_NAME).exists() else sorted(path.glob("*.safetensors"))
        if not files:
            raise NasnetError(f"{where}: no {WEIGHTS_NAME} (or other .safetensors file) in this folder")
        if len(files) > 1:
            raise NasnetError(f"{where} holds {len(files)} .safetensors files "
                              f"({', '.join(f.name for f in files[:5])}); name one")
        path = files[0]
    if not path.exists():
        raise NasnetError(f"{where}: no such file" + (" (a broken hub-cache link?)" if path.is_symlink() else ""))
    config = path.parent / CONFIG_NAME
    return path, config if config.is_file() else None


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors of a .safetensors file and its metadata; one-line errors for a damaged file."""
    try:
        from safetensors import safe_open
    except ImportError:
        raise NasnetError("reading safetensors needs the safetensors package: pip install 'nasnet[weights]'") from None
    path = Path(path)
    where = repr(str(path))
    if not path.is_file():
        raise NasnetError(f"{where}: no such file")
    size = path.stat().st_size
    if size < 8:
        raise NasnetError(f"{where} is not a safetensors file ({size} bytes, truncated?)")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises SafetensorError (and OSError) for damaged files
        raise NasnetError(f"{where} is not a readable safetensors file (truncated or damaged: {first_line(err)})"
                          ) from None
    return tensors, metadata


def read_hub_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise NasnetError(f"{str(path)!r} is not valid JSON ({first_line(err)})") from None
    if not isinstance(data, dict):
        raise NasnetError(f"{str(path)!r} is not a model config (a JSON object)")
    return data


# --------------------------------------------------------------------------------------------
# What the file and its config.json say
# --------------------------------------------------------------------------------------------
def hub_facts(hub: Mapping[str, Any], where: str) -> dict[str, Any]:
    """timm's ``architecture`` (e.g. "nasnetalarge"), ``label_offset`` and ``num_classes`` from a config.json."""
    pre = hub.get("pretrained_cfg") if isinstance(hub.get("pretrained_cfg"), Mapping) else {}
    arch = hub.get("architecture") or pre.get("architecture")
    offset = pre.get("label_offset", hub.get("label_offset", 0)) or 0
    if not isinstance(offset, int) or offset < 0:
        raise NasnetError(f"{where}: config.json has label_offset {offset!r}")
    return {"architecture": str(arch).split(".")[0] if arch else None, "label_offset": offset,
            "num_classes": hub.get("num_classes", pre.get("num_classes"))}


def check_label_offset(offset: int, rows: int, where: str) -> tuple[str, ...]:
    """Notes for the import; an error when config.json's label_offset does not fit the classifier's rows."""
    if not offset:
        return ()
    if offset != 1 or rows != BACKGROUND_CLASSES:
        raise NasnetError(f"{where}: config.json has label_offset {offset}, but the classifier has {rows} rows "
                          f"(expected {BACKGROUND_CLASSES} with label_offset 1)")
    return ("config.json: label_offset 1 (class 0 is background)",)


def is_our_layout(tensors: Mapping[str, Any], metadata: Mapping[str, str]) -> bool:
    return META_CONFIG in metadata or "stem.conv.weight" in tensors


def read_model_metadata(metadata: Mapping[str, str], where: str) -> tuple[ModelConfig | None, Preprocessing | None]:
    """The model config and preprocessing `save_safetensors` stored (None where the file has none)."""
    try:
        config = ModelConfig.from_dict(json.loads(metadata[META_CONFIG])) if META_CONFIG in metadata else None
        prep = json.loads(metadata[META_PREPROCESSING]) if META_PREPROCESSING in metadata else None
        prep = Preprocessing.from_dict(prep) if isinstance(prep, dict) else None
    except (ValueError, TypeError, KeyError, NasnetError) as err:
        raise NasnetError(f"{where}: its nasnet metadata is not a model config ({first_line(err)})") from None
    return config, prep


# --------------------------------------------------------------------------------------------
# Writing our own
# --------------------------------------------------------------------------------------------
def safetensors_metadata(model: NASNet, source: dict | None = None) -> dict[str, str]:
    """String metadata: "format" (pt, as the safetensors package writes it), ours, the config, the preprocessing
    and, for imported weights, where they came from (as a model file's "source").
    The config is the model's own (its image size sizes the auxiliary head's kernel)."""
    prep = getattr(model, "preprocessing", None)
    meta = {"format": "pt", META_FORMAT: OUR_FORMAT, META_CONFIG: json.dumps(model.config.to_dict())}
    if prep is not None:
        meta[META_PREPROCESSING] = json.dumps(prep.to_dict())
    if source:
        meta[META_SOURCE] = json.dumps(source)
    return meta


def save_safetensors(model: NASNet, path: str | Path, source: dict | None = None) -> Path:
    """Our model's weights as safetensors with its config (and preprocessing, and `source`) as JSON metadata,
    written atomically. `nasnet.load_model(path)` reads it back (no pickle on either side)."""
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise NasnetError("writing safetensors needs the safetensors package: pip install 'nasnet[weights]'") from None
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with replacing(path) as tmp:
        save_file(state, str(tmp), metadata=safetensors_metadata(model, source))
    return path
