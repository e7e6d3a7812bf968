"""Shared test setup: make sure the flushcheck pytest plugin is active even when the
package is not installed (it is normally loaded through its ``pytest11`` entry point)."""
import importlib


def pytest_configure(config):
    if not config.pluginmanager.has_plugin("flushcheck"):
        plugin = importlib.import_module("conformance.pytest_plugin")
        config.pluginmanager.register(plugin, "flushcheck")
        plugin.pytest_configure(config)
