"""Every docstring example of the package runs and says what it shows (the guide asks for an
example on every public function: an example that no longer runs is worse than none)."""
import doctest
import importlib
import pkgutil

import pytest

import conformance
import strategies

# every module, those of the subpackages (conformance.search, .mm, .hw) included
MODULES = ["conformance", "strategies"] + sorted(m.name for m in pkgutil.walk_packages(
    conformance.__path__, "conformance."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS, verbose=False)
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples of {name} failed"
