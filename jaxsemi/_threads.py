"""CPU thread pools: JAX spreads a batch of small LAPACK calls (the vmapped ``eigh`` of every
k-point sum) over the cores itself, so the BLAS threads OpenBLAS starts inside each call only
compete with it. Measured on a 2-core CPU (``benchmarks/results/step8/``): a batch of 2304
32×32 ``eigh`` 1.6–2.4× faster with one BLAS thread, σ_xy of a 32-band Wannier model 1.3×."""

from __future__ import annotations


def limit_blas_threads(n: int = 1):
    """Limit the BLAS/LAPACK libraries loaded in this process (NumPy's and SciPy's OpenBLAS,
    whose LAPACK JAX's CPU backend calls) to ``n`` threads each, via ``threadpoolctl``.

    Returns the ``threadpoolctl.threadpool_limits`` object: ``.restore_original_limits()``
    undoes it, and ``with js.limit_blas_threads(): ...`` limits only inside the block (JAX
    dispatches asynchronously: block on the results inside it). It also slows NumPy's own large
    matrix products, so ``jaxsemi demo`` and ``jaxsemi bench`` set it, not ``import jaxsemi``.
    Equivalent for a whole process: ``OPENBLAS_NUM_THREADS=1`` in the environment.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    import jax.numpy as jnp
    from threadpoolctl import threadpool_limits

    jnp.linalg.eigh(jnp.eye(2))  # loads the LAPACK JAX calls (SciPy's OpenBLAS) if not yet loaded
    return threadpool_limits(n, user_api="blas")


def blas_threads() -> dict:
    """Threads of each loaded BLAS library, {file name: threads} (for benchmark reports)."""
    from threadpoolctl import threadpool_info

    return {info["filepath"].rsplit("/", 1)[-1]: info["num_threads"] for info in threadpool_info()
            if info["user_api"] == "blas"}
