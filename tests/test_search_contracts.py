"""The search's typed seams: NasnetError is not a ValueError (user errors are never swallowed as one),
the child payload and result are checked where they cross the executor boundary, and outcome kinds
and statuses are enums that still compare equal to their stored text."""

import json

import pytest

from nasnet.errors import NasnetError
from nasnet.search.run_dir import load_run_config


def test_a_user_error_is_not_a_value_error_and_keeps_its_context(tmp_path):
    assert not issubclass(NasnetError, ValueError)
    (tmp_path / "config.json").write_text(json.dumps({"children": 0}))
    with pytest.raises(NasnetError, match=r"config\.json: cannot read the run's config \(`children` must be"):
        load_run_config(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(NasnetError, match="cannot read the run's config"):
        load_run_config(tmp_path)
