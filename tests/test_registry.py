import pytest

from sfray.errors import ConfigError
from sfray.registry import Registry


def test_registry_lists_valid_names_and_the_closest():
    reg: Registry[int] = Registry("model.size", "model size")
    reg.add("tiny", 1)
    reg.add("paper", 2)
    assert reg.get("tiny") == 1 and reg.names() == ("tiny", "paper") and "paper" in reg
    with pytest.raises(ConfigError, match=r"model\.size.*'tinny'.*tiny \| paper.*did you mean 'tiny'"):
        reg.get("tinny")
    with pytest.raises(ValueError):
        reg.add("tiny", 3)
