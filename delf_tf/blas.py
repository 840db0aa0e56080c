"""The one way delf_tf limits NumPy's BLAS threads."""

import contextlib

__all__ = ["single_threaded"]


def single_threaded() -> contextlib.AbstractContextManager:
    """A context in which BLAS (OpenBLAS, MKL, ...) runs on one thread.

    For many small products: BLAS's own threads do not pay off there, and after each
    product they keep spinning for a while, slowing whatever runs next (TensorFlow's
    threads, other Python threads' products) several times on a busy machine.
    """
    import threadpoolctl

    return threadpoolctl.threadpool_limits(limits=1, user_api="blas")
