"""Run at start-up by service child processes that tests start with `support.pace.child_env()`
on PYTHONPATH: paces (ECDIFF_TEST_PACE) and gates (ECDIFF_TEST_GATE) the tiny UNets there, and gates
loading a model (ECDIFF_TEST_LOAD_GATE), the test-only way in, so the product has no test hook.

It does so once the process imports `ecdiff.loading`, not at start-up: a Ray job's workers all run
this file, and those that never load a model (Ray Serve's controller and proxy) then never import
torch for it, which on a loaded 2-core machine made them miss Ray's start-up timeouts."""

import importlib.abc
import importlib.util
import sys


class _InstallOnLoading(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "ecdiff.loading":
            return None
        sys.meta_path.remove(self)  # once, and not for the lookup below
        spec = importlib.util.find_spec(name)
        run_module = spec.loader.exec_module

        def run_then_install(module):
            run_module(module)
            from support.pace import install_from_env

            install_from_env()

        spec.loader.exec_module = run_then_install
        return spec


sys.meta_path.insert(0, _InstallOnLoading())
