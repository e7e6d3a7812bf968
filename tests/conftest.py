"""Shared test setup: make sure the flushcheck pytest plugin is active even when the
package is not installed (it is normally loaded through its ``pytest11`` entry point), and
run this repository's own Hypothesis tests under flushcheck's profile (``ci`` when
``CI=true``: derandomized, no example database, as ``.ci/run`` relies on; ``dev``
otherwise; ``--hypothesis-profile`` wins), which the plugin leaves to each project."""
import importlib

from hypothesis import settings

from conformance.database import profile, register_profiles

# at import, before Hypothesis's pytest plugin loads --hypothesis-profile: flushcheck's ci
# replaces Hypothesis's own here (the plugin, in other projects, leaves theirs alone)
register_profiles()


def pytest_configure(config):
    plugin = importlib.import_module("conformance.pytest_plugin")
    if not config.pluginmanager.is_registered(plugin):  # -p no:flushcheck, or not installed
        config.pluginmanager.register(plugin, "flushcheck")
    if not config.getoption("--hypothesis-profile", default=None):
        settings.load_profile(profile())
