"""Config reading: every shipped pbtxt parses with the SPEC values; bad files are
reported with their path and the parser's position."""

import glob
import os

import pytest

from delf_tf import config
from delf_tf.protos import aggregation_config_pb2, delf_config_pb2

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
DELG_SCALES = [0.25, 0.35355338, 0.5, 0.70710677, 1.0, 1.4142135, 2.0]
DELG_THRESHOLDS = {
    "delg_gld_config.pbtxt": 175.0,
    "r50delg_gld_config.pbtxt": 175.0,
    "r101delg_gld_config.pbtxt": 166.1,
    "r50delg_gldv2clean_config.pbtxt": 454.6,
    "r101delg_gldv2clean_config.pbtxt": 357.48,
}


def test_all_shipped_configs_are_known():
    shipped = {os.path.basename(p) for p in glob.glob(os.path.join(CONFIGS, "*.pbtxt"))}
    assert shipped == set(DELG_THRESHOLDS) | {
        "delf_config_example.pbtxt", "index_aggregation_config.pbtxt",
        "query_aggregation_config.pbtxt", "how_r18_config.pbtxt"}


def test_delf_config_example():
    cfg = config.ReadDelfConfig(os.path.join(CONFIGS, "delf_config_example.pbtxt"))
    assert list(cfg.image_scales) == pytest.approx([.25, .3536, .5, .7071, 1.0, 1.4142, 2.0])
    local = cfg.delf_local_config
    assert local.use_pca and local.layer_name == "resnet_v1_50/block3"
    assert local.iou_threshold == 1.0 and local.max_feature_num == 1000
    assert local.score_threshold == 100.0
    assert local.pca_parameters.pca_dim == 40 and not local.pca_parameters.use_whitening
    assert not os.path.isabs(cfg.model_path)
    assert cfg.use_local_features and not cfg.use_global_features


@pytest.mark.parametrize("name", sorted(DELG_THRESHOLDS))
def test_delg_configs(name):
    cfg = config.ReadDelfConfig(os.path.join(CONFIGS, name))
    assert cfg.use_local_features and cfg.use_global_features
    assert list(cfg.image_scales) == pytest.approx(DELG_SCALES)
    assert cfg.max_image_size == 1024
    assert not cfg.delf_local_config.use_pca
    assert cfg.delf_local_config.max_feature_num == 1000
    assert cfg.delf_local_config.score_threshold == pytest.approx(DELG_THRESHOLDS[name])
    assert not cfg.delf_global_config.use_pca
    assert list(cfg.delf_global_config.image_scales_ind) == [3, 4, 5]
    assert cfg.model_path.startswith("parameters/")


@pytest.mark.parametrize("name,regional", [("index_aggregation_config.pbtxt", True),
                                           ("query_aggregation_config.pbtxt", False)])
def test_aggregation_configs(name, regional):
    cfg = config.ReadAggregationConfig(os.path.join(CONFIGS, name))
    assert cfg.aggregation_type == aggregation_config_pb2.AggregationConfig.ASMK_STAR
    assert cfg.codebook_size == 65536 and cfg.feature_dimensionality == 128
    assert cfg.use_l2_normalization and cfg.num_assignments == 1
    assert cfg.alpha == 3.0 and cfg.tau == 0.0
    assert cfg.use_regional_aggregation == regional
    assert cfg.codebook_path.startswith("parameters/")


def test_unknown_field_names_file_line_and_field(tmp_path):
    path = tmp_path / "bad_config.pbtxt"
    path.write_text('model_path: "m"\nimage_scales: 1.0\nmax_imag_size: 3\n')
    with pytest.raises(ValueError) as info:
        config.ReadDelfConfig(str(path))
    message = str(info.value)
    assert "bad_config.pbtxt" in message and "3:1" in message and "max_imag_size" in message


def test_wrong_type_is_reported(tmp_path):
    path = tmp_path / "typo.pbtxt"
    path.write_text("codebook_size: lots\n")
    with pytest.raises(ValueError, match="typo.pbtxt"):
        config.ReadAggregationConfig(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pbtxt"):
        config.ReadDelfConfig(str(tmp_path / "nope.pbtxt"))


def test_write_read_round_trip(tmp_path):
    cfg = delf_config_pb2.DelfConfig(model_path="x", image_scales=[0.5, 1.0], max_image_size=64)
    path = str(tmp_path / "out.pbtxt")
    config.WriteConfig(path, cfg)
    assert config.ReadDelfConfig(path) == cfg


@pytest.mark.parametrize("text, field", [
        ("image_scales: 0.0", "image_scales"),
        ("image_scales: 1.0 image_scales: -0.5", "image_scales"),
        ("image_scales: nan", "image_scales"),
        ("max_image_size: 0", "max_image_size"),
        ("delf_local_config { max_feature_num: -1 }", "max_feature_num"),
        ("delf_local_config { iou_threshold: 0 }", "iou_threshold"),
        ("delf_local_config { iou_threshold: 1.5 }", "iou_threshold"),
        ("delf_local_config { score_threshold: nan }", "score_threshold"),
])
def test_invalid_delf_config_values_name_the_file_and_field(tmp_path, text, field):
    path = tmp_path / "bad.pbtxt"
    path.write_text("model_path: 'm'\n" + text + "\n")
    with pytest.raises(ValueError, match=f"{path}.*{field}"):
        config.ReadDelfConfig(str(path))


def test_valid_delf_config_values_pass(tmp_path):
    path = tmp_path / "ok.pbtxt"
    path.write_text("image_scales: 0.25 image_scales: 1.0 max_image_size: -1\n"
                    "delf_local_config { max_feature_num: 0 iou_threshold: 1.0 }\n")
    assert list(config.ReadDelfConfig(str(path)).image_scales) == [0.25, 1.0]


def test_binary_config_file_is_named(tmp_path):
    path = tmp_path / "binary.pbtxt"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match=f"{path}: not a text"):
        config.ReadDelfConfig(str(path))
