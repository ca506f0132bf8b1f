"""The model zoo: named NASNet-A configurations (table), the importer of every weight format we read
(importer: `import_weights`), and the factory that builds models, fresh or from weights
(`create_model`, `load_model`)."""

from .factory import create_model, load_model
from .importer import import_reference_model, import_weights, reference_config
from .table import ZooEntry, get_entry, list_models, model_config

__all__ = ["ZooEntry", "create_model", "get_entry", "import_reference_model", "import_weights", "list_models",
           "load_model", "model_config", "reference_config"]
