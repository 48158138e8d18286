import subprocess
import sys


def test_the_sdk_imports_no_server_module():
    # A fresh interpreter: this test process has the services loaded already.
    code = ("import sys, ecdiff.clients.sdk, ecdiff.clients.generate_cli; "
            "print(sorted(m for m in sys.modules if m.startswith('ecdiff.services')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
