"""The package surface: the original's module names resolve, and importing the
package itself stays cheap (no TensorFlow)."""

import subprocess
import sys

import pytest

import delf_tf


@pytest.mark.parametrize("name", sorted(delf_tf._LAZY_MODULES))
def test_original_module_names_resolve(name):
    assert getattr(delf_tf, name).__name__ == delf_tf._LAZY_MODULES[name]


def test_import_does_not_load_tensorflow():
    code = "import sys, delf_tf; from delf_tf import feature_io; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no_such_module"):
        delf_tf.no_such_module  # noqa: B018
