"""Nearest-neighbour step of matching vs its bare matrix product, single thread.

Times descriptor_matching.nearest_neighbors (k = 1 and 2) for one image pair
of 1000 x 128-D unit descriptors against the float32 product q @ x.T alone,
and reports the share of time spent outside the product (offset, argmax,
exact float64 distances of the chosen pairs).

Usage: .venv/bin/python benchmarks/nn_overhead.py [--num_features 1000]
"""

import os

import numpy as np
from _results import flag_parser, timed, write_result
from threadpoolctl import threadpool_limits

from delf_tf.matching import descriptor_matching

_RESULT = os.path.join(os.path.dirname(__file__), "results", "nn_overhead.json")


def _cpu_ms(fn, calls=20, repeats=5):
    """Best CPU milliseconds per call of `fn`, over `repeats` runs of `calls` calls."""
    return 1e3 * timed(lambda: [fn() for _ in range(calls)], repeats).cpu / calls


def main() -> None:
    parser = flag_parser(__doc__, num_features=1000, dim=128)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    def unit():
        x = rng.normal(size=(args.num_features, args.dim))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    query = descriptor_matching.prepare_descriptors(unit())
    index = descriptor_matching.prepare_descriptors(unit())
    results = {"num_features": args.num_features, "dim": args.dim}
    with threadpool_limits(1):
        product = _cpu_ms(lambda: query.vectors @ index.vectors.T)
        results["matmul_ms"] = product
        print(f"bare q @ x.T          {product:7.3f} ms")
        for k in (1, 2):
            total = _cpu_ms(lambda k=k: descriptor_matching.nearest_neighbors(query, index, k))
            results[f"k{k}_ms"] = total
            results[f"k{k}_outside_product_share"] = (total - product) / total
            print(f"nearest_neighbors k={k} {total:7.3f} ms "
                  f"({100 * (total - product) / total:.0f}% outside the product)")
    write_result(_RESULT, results)


if __name__ == "__main__":
    main()
