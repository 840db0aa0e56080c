"""Feature-file read speed: vectorised wire decoding vs the protobuf object path.

Writes the candidates of one query (default 100 files of 1000 features, the
DELG default `max_feature_num`) as float 128-D `.delg_local` files and as
binarized DELG* files (128 bits -> 16 bytes per descriptor), then reads them
all in one process with
  ours       feature_io.ReadFromFile (wire_format decoding, protobuf fallback),
  protobuf   the file bytes through DelfFeatures.ParseFromString +
             DelfFeaturesToArrays (the path every file took before),
checks both give identical arrays and reports the speed-up in wall time and
in CPU time (steadier on a shared machine). Both read the same files; the
bytes on disk are unchanged. Global `.delg_global` files
(one 2048-D DatumProto) are timed the same way.

Usage: .venv/bin/python benchmarks/feature_read.py [--num_files 100]
       [--num_features 1000]
"""

import os
import tempfile

import numpy as np
from _results import flag_parser, interleaved, write_result

from delf_tf.io import atomic, datum_io, feature_io
from delf_tf.matching import reranking
from delf_tf.protos import datum_pb2, feature_pb2
from delf_tf.retrieval import evaluation

_RESULT = os.path.join(os.path.dirname(__file__), "results", "feature_read.json")


def _protobuf_read_features(path):
    proto = feature_pb2.DelfFeatures()
    proto.ParseFromString(atomic.read_bytes(path))
    return feature_io.DelfFeaturesToArrays(proto)


def _protobuf_read_datum(path):
    proto = datum_pb2.DatumProto()
    proto.ParseFromString(atomic.read_bytes(path))
    return datum_io.DatumToArray(proto)


def _best_times(fns, repeats):
    """([best wall seconds], [best CPU seconds]) of each function, run interleaved."""
    walls, cpus = interleaved(dict(enumerate(fns)), repeats)
    return list(walls.values()), list(cpus.values())


def _compare(name, paths, ours, baseline, repeats):
    for path in paths:
        got, expected = ours(path), baseline(path)
        for g, e in zip(got if isinstance(got, tuple) else (got,),
                        expected if isinstance(expected, tuple) else (expected,)):
            assert g.dtype == e.dtype and g.shape == e.shape, (name, path)
            np.testing.assert_array_equal(g, e)
    fns = [lambda: [ours(p) for p in paths], lambda: [baseline(p) for p in paths]]
    (ours_s, baseline_s), (ours_cpu, baseline_cpu) = _best_times(fns, repeats)
    row = {"files": len(paths), "bytes_per_file": os.path.getsize(paths[0]),
           "ours_ms_per_file": 1e3 * ours_s / len(paths),
           "protobuf_ms_per_file": 1e3 * baseline_s / len(paths),
           "speedup": baseline_s / ours_s,
           "ours_cpu_ms_per_file": 1e3 * ours_cpu / len(paths),
           "protobuf_cpu_ms_per_file": 1e3 * baseline_cpu / len(paths),
           "speedup_cpu": baseline_cpu / ours_cpu}
    print(f"{name:26s} {row['bytes_per_file']:>8,d} B  wall: ours {row['ours_ms_per_file']:6.3f} ms"
          f" protobuf {row['protobuf_ms_per_file']:7.3f} ms = {row['speedup']:5.1f}x"
          f"  CPU: {row['ours_cpu_ms_per_file']:6.3f} vs {row['protobuf_cpu_ms_per_file']:7.3f} ms"
          f" = {row['speedup_cpu']:5.1f}x")
    return row


def main() -> None:
    parser = flag_parser(__doc__, num_files=100, num_features=1000, repeats=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n = args.num_features
    results = {"num_files": args.num_files, "num_features": n}
    with tempfile.TemporaryDirectory() as tmp:
        local, binary, global_ = [], [], []
        for i in range(args.num_files):
            locations = rng.uniform(0, 1024, [n, 2])
            scales = rng.choice([0.25, 0.3535, 0.5, 0.7071, 1.0, 1.4142, 2.0], n)
            attention = rng.uniform(100, 300, n)
            descriptors = rng.normal(size=[n, 128]).astype(np.float32)
            descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
            local.append(os.path.join(tmp, f"{i}.delg_local"))
            feature_io.WriteToFile(local[-1], locations, scales, descriptors, attention)
            binary.append(os.path.join(tmp, f"{i}_star.delg_local"))
            feature_io.WriteToFile(binary[-1], locations, scales,
                                   np.packbits(descriptors > 0, axis=1), attention)
            global_.append(os.path.join(tmp, f"{i}.delg_global"))
            datum_io.WriteToFile(rng.normal(size=2048).astype(np.float32), global_[-1])
        results["float_local"] = _compare(
            "DELG local (float 128-D)", local, feature_io.ReadFromFile,
            _protobuf_read_features, args.repeats)
        results["binarized_local"] = _compare(
            "DELG* local (16 bytes)", binary, feature_io.ReadFromFile,
            _protobuf_read_features, args.repeats)
        new_check = lambda: evaluation.check_local_feature_files(local, log=lambda _: None)  # noqa: E731
        old_check = lambda: [reranking.check_local_features_file(p) for p in local]  # noqa: E731
        (new_s, old_s), (new_cpu, old_cpu) = _best_times([new_check, old_check], args.repeats)
        results["up_front_check"] = {
            "ours_ms_per_file": 1e3 * new_s / len(local),
            "full_parse_ms_per_file": 1e3 * old_s / len(local),
            "speedup": old_s / new_s, "speedup_cpu": old_cpu / new_cpu}
        print(f"{'perform_retrieval check':26s} first feature"
              f" {1e3 * new_s / len(local):6.3f} ms/file vs full parse"
              f" {1e3 * old_s / len(local):7.3f} ms/file = {old_s / new_s:5.0f}x"
              f" (CPU {old_cpu / new_cpu:.0f}x)")
        results["global"] = _compare(
            "DELG global (2048-D)", global_, datum_io.ReadFromFile,
            _protobuf_read_datum, args.repeats)
    write_result(_RESULT, results)


if __name__ == "__main__":
    main()
