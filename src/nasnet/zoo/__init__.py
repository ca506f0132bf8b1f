"""The model zoo: named NASNet-A configurations (table) and the factory that builds them, fresh or
from weights (`create_model`, `load_model`)."""

from .factory import create_model, import_reference_model, load_model, reference_config
from .table import ZooEntry, get_entry, list_models, model_config

__all__ = ["ZooEntry", "create_model", "get_entry", "import_reference_model", "list_models", "load_model",
           "model_config", "reference_config"]
