"""L2 normalisation, PCA files and DELG* binarisation."""

import numpy as np
import pytest

from delf_tf.extraction import postprocess
from delf_tf.io import datum_io
from delf_tf.protos import delf_config_pb2


def test_binarize_bit_order_and_threshold():
    descriptors = np.zeros([2, 16], np.float32)
    descriptors[0, 0] = 0.5     # first bit of the first byte is its most significant
    descriptors[0, 9] = 1e-6
    descriptors[1, 7] = -1.0    # negative: bit clear
    descriptors[1, 15] = 2.0
    bits = postprocess.binarize(descriptors)
    assert bits.dtype == np.uint8 and bits.shape == (2, 2)
    np.testing.assert_array_equal(bits, [[0b10000000, 0b01000000], [0, 0b00000001]])
    rng = np.random.RandomState(0)
    data = rng.randn(5, 128)
    np.testing.assert_array_equal(
            np.unpackbits(postprocess.binarize(data), axis=1).astype(bool), data > 0)


def test_binarize_rejects_1d():
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        postprocess.binarize(np.ones([8]))


def test_l2_normalize_rows_and_zero_rows():
    out = postprocess.l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(postprocess.l2_normalize(np.array([0.0, 2.0])), [0.0, 1.0])


def _write_pca(tmp_path, dim=3, components=2, whitening=True):
    config = delf_config_pb2.DelfPcaParameters(
            mean_path=str(tmp_path / "mean.datum"),
            projection_matrix_path=str(tmp_path / "proj.datum"), pca_dim=components,
            use_whitening=whitening, pca_variances_path=str(tmp_path / "var.datum"))
    datum_io.WriteToFile(np.arange(dim, dtype=np.float32), config.mean_path)
    datum_io.WriteToFile(np.eye(dim, dtype=np.float32), config.projection_matrix_path)
    datum_io.WriteToFile(np.arange(1, dim + 1, dtype=np.float32), config.pca_variances_path)
    return config


def test_load_pca_parameters(tmp_path):
    params = postprocess.LoadPcaParameters(_write_pca(tmp_path))
    np.testing.assert_array_equal(params.mean, [0, 1, 2])
    np.testing.assert_array_equal(params.matrix, np.eye(3))
    np.testing.assert_array_equal(params.variances, [1, 2, 3])
    assert params.output_dim == 2 and params.use_whitening


def test_load_pca_parameters_errors(tmp_path):
    config = _write_pca(tmp_path)
    config.pca_dim = 4
    with pytest.raises(ValueError, match="pca_dim 4"):
        postprocess.LoadPcaParameters(config)
    config.pca_dim = 2
    datum_io.WriteToFile(np.zeros([2, 5], np.float32), config.projection_matrix_path)
    with pytest.raises(ValueError, match=r"proj\.datum has shape"):
        postprocess.LoadPcaParameters(config)
    config.mean_path = str(tmp_path / "missing.datum")
    with pytest.raises(FileNotFoundError, match="missing.datum"):
        postprocess.LoadPcaParameters(config)
