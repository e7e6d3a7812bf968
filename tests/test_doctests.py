"""Every docstring example of the package runs and says what it shows (the guide asks for an
example on every public function: an example that no longer runs is worse than none)."""
import doctest
import importlib
import pkgutil

import pytest

import conformance
import strategies

MODULES = ["conformance", "strategies"] + sorted(f"conformance.{m.name}" for m in
                                  pkgutil.iter_modules(conformance.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS, verbose=False)
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples of {name} failed"
