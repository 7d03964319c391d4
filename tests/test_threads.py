"""``js.limit_blas_threads``: the BLAS pools of the process (NumPy's and SciPy's OpenBLAS, whose
LAPACK JAX's CPU backend calls) go to n threads and back."""

import pytest

import jaxsemi as js
from jaxsemi._threads import blas_threads


@pytest.mark.timeout(120)
def test_limit_and_restore():
    limiter = js.limit_blas_threads(1)
    try:
        limited = blas_threads()
        assert limited and set(limited.values()) == {1}  # at least one BLAS library, each on one thread
    finally:
        limiter.restore_original_limits()
    original = blas_threads()
    with js.limit_blas_threads(1):
        assert set(blas_threads().values()) == {1}
    assert blas_threads() == original  # the context manager gives the original pools back


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1"])
def test_bad_thread_counts(bad):
    with pytest.raises(ValueError, match="positive int"):
        js.limit_blas_threads(bad)
