"""symmaml.memory: glibc is told to keep freed memory; off elsewhere or with SYMMAML_MALLOPT=0."""
from __future__ import annotations

import os
import subprocess
import sys

from symmaml.memory import keep_freed_memory


def _in_fresh_process(env_value):
    env = dict(os.environ)
    env.pop("SYMMAML_MALLOPT", None)
    if env_value is not None:
        env["SYMMAML_MALLOPT"] = env_value
    code = "from symmaml.memory import keep_freed_memory as k; print(k(), k())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()


def test_it_is_idempotent_and_a_bool():
    first = keep_freed_memory()
    assert isinstance(first, bool) and keep_freed_memory() is first


def test_it_can_be_turned_off():
    assert _in_fresh_process("0") == ["False", "False"]


def test_it_is_done_on_glibc():
    import platform

    expected = "True" if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc" else "False"
    assert _in_fresh_process(None) == [expected, expected]
