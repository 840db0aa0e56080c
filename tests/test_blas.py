"""delf_tf.blas.single_threaded limits NumPy's BLAS to one thread, then restores it."""

import numpy as np  # noqa: F401 (loads NumPy's BLAS)
import threadpoolctl

from delf_tf import blas


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpoolctl.threadpool_info()
            if pool["user_api"] == "blas"]


def test_single_threaded_limits_blas_and_restores_it():
    before = _blas_threads()
    assert before, "NumPy's BLAS is not visible to threadpoolctl"
    with blas.single_threaded():
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before
