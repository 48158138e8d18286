"""Run at start-up by service child processes that tests start with `support.pace.child_env()`
on PYTHONPATH: paces (ECDIFF_TEST_PACE) and gates (ECDIFF_TEST_GATE) the tiny UNets there, the
test-only way in, so the product has no test hook."""

from support.pace import install_from_env

install_from_env()
