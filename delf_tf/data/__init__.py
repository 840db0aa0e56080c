"""Data: GLD TFRecord building (`builder`) and reading (`gld`), the embedded demo set (`demo`).

Submodules are imported explicitly (`from delf_tf.data import gld`), so importing the package
stays cheap.
"""

__all__: list[str] = []
