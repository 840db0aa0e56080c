"""The generated messages: the original's field numbers/types/defaults, and that the
committed *_pb2 modules match the .proto files."""

import os
import subprocess
import sys

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor as FD

from delf_tf.protos import aggregation_config_pb2, box_pb2, datum_pb2, delf_config_pb2, feature_pb2

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# message -> {field: (number, type, default or None)}
EXPECTED = {
    delf_config_pb2.DelfPcaParameters: {
        "mean_path": (1, FD.TYPE_STRING, None), "projection_matrix_path": (2, FD.TYPE_STRING, None),
        "pca_dim": (3, FD.TYPE_INT32, None), "use_whitening": (4, FD.TYPE_BOOL, False),
        "pca_variances_path": (5, FD.TYPE_STRING, None)},
    delf_config_pb2.DelfLocalFeatureConfig: {
        "use_pca": (1, FD.TYPE_BOOL, True), "layer_name": (2, FD.TYPE_STRING, ""),
        "iou_threshold": (3, FD.TYPE_FLOAT, 1.0), "max_feature_num": (4, FD.TYPE_INT32, 1000),
        "score_threshold": (5, FD.TYPE_FLOAT, 100.0), "pca_parameters": (6, FD.TYPE_MESSAGE, None),
        "use_resized_coordinates": (7, FD.TYPE_BOOL, False)},
    delf_config_pb2.DelfGlobalFeatureConfig: {
        "use_pca": (1, FD.TYPE_BOOL, True), "pca_parameters": (2, FD.TYPE_MESSAGE, None),
        "image_scales_ind": (3, FD.TYPE_INT32, None)},
    delf_config_pb2.DelfConfig: {
        "model_path": (1, FD.TYPE_STRING, None), "image_scales": (2, FD.TYPE_FLOAT, None),
        "delf_local_config": (3, FD.TYPE_MESSAGE, None), "max_image_size": (4, FD.TYPE_INT32, -1),
        "min_image_size": (5, FD.TYPE_INT32, -1), "use_square_images": (6, FD.TYPE_BOOL, False),
        "use_local_features": (7, FD.TYPE_BOOL, True),
        "use_global_features": (8, FD.TYPE_BOOL, False),
        "delf_global_config": (9, FD.TYPE_MESSAGE, None),
        "is_tf2_exported": (10, FD.TYPE_BOOL, False)},
    datum_pb2.DatumShape: {"dim": (1, FD.TYPE_INT64, None)},
    datum_pb2.FloatList: {"value": (1, FD.TYPE_FLOAT, None)},
    datum_pb2.Uint32List: {"value": (1, FD.TYPE_UINT32, None)},
    datum_pb2.DatumProto: {"shape": (1, FD.TYPE_MESSAGE, None),
                           "float_list": (2, FD.TYPE_MESSAGE, None),
                           "uint32_list": (3, FD.TYPE_MESSAGE, None)},
    datum_pb2.DatumPairProto: {"first": (1, FD.TYPE_MESSAGE, None),
                               "second": (2, FD.TYPE_MESSAGE, None)},
    feature_pb2.DelfFeature: {
        "descriptor": (1, FD.TYPE_MESSAGE, None), "x": (2, FD.TYPE_FLOAT, None),
        "y": (3, FD.TYPE_FLOAT, None), "scale": (4, FD.TYPE_FLOAT, None),
        "orientation": (5, FD.TYPE_FLOAT, None), "strength": (6, FD.TYPE_FLOAT, None)},
    feature_pb2.DelfFeatures: {"feature": (1, FD.TYPE_MESSAGE, None)},
    box_pb2.Box: {
        "ymin": (1, FD.TYPE_FLOAT, None), "xmin": (2, FD.TYPE_FLOAT, None),
        "ymax": (3, FD.TYPE_FLOAT, None), "xmax": (4, FD.TYPE_FLOAT, None),
        "score": (5, FD.TYPE_FLOAT, None), "class_index": (6, FD.TYPE_INT32, None)},
    box_pb2.Boxes: {"box": (1, FD.TYPE_MESSAGE, None)},
    aggregation_config_pb2.AggregationConfig: {
        "codebook_size": (1, FD.TYPE_INT32, 65536),
        "feature_dimensionality": (2, FD.TYPE_INT32, 128),
        "aggregation_type": (3, FD.TYPE_ENUM, 3), "use_l2_normalization": (4, FD.TYPE_BOOL, True),
        "codebook_path": (5, FD.TYPE_STRING, None), "num_assignments": (6, FD.TYPE_INT32, 1),
        "use_regional_aggregation": (7, FD.TYPE_BOOL, False), "alpha": (8, FD.TYPE_FLOAT, 3.0),
        "tau": (9, FD.TYPE_FLOAT, 0.0), "feature_batch_size": (10, FD.TYPE_INT32, 100)},
}


@pytest.mark.parametrize("message", list(EXPECTED), ids=lambda m: m.DESCRIPTOR.name)
def test_fields_numbers_types_defaults(message):
    fields = message.DESCRIPTOR.fields_by_name
    assert set(fields) == set(EXPECTED[message])
    for name, (number, field_type, default) in EXPECTED[message].items():
        field = fields[name]
        assert field.number == number, name
        assert field.type == field_type, name
        if default is not None:
            assert field.has_default_value, name
            assert field.default_value == pytest.approx(default), name


def test_packed_repeated_fields():
    for message in (datum_pb2.DatumShape, datum_pb2.FloatList, datum_pb2.Uint32List):
        proto = descriptor_pb2.DescriptorProto()
        message.DESCRIPTOR.CopyToProto(proto)
        assert proto.field[0].label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
        assert proto.field[0].options.packed


def test_aggregation_enum_values():
    enum = aggregation_config_pb2.AggregationConfig.AggregationType
    assert {name: enum.Value(name) for name in enum.keys()} == {  # noqa: SIM118
        "INVALID": 0, "VLAD": 1, "ASMK": 2, "ASMK_STAR": 3}


def test_datum_kind_is_a_oneof_named_as_the_original():
    oneof = datum_pb2.DatumProto.DESCRIPTOR.oneofs_by_name["kind_oneof"]
    assert [f.name for f in oneof.fields] == ["float_list", "uint32_list"]
    datum = datum_pb2.DatumProto()
    datum.shape.dim.extend([2])
    datum.uint32_list.value.extend([7, 300])
    assert datum.WhichOneof("kind_oneof") == "uint32_list"
    # The oneof's name is not on the wire: the bytes are the original's.
    assert datum.SerializeToString() == b"\n\x03\n\x01\x02\x1a\x05\n\x03\x07\xac\x02"


def _strip_json_names(messages) -> None:
    for message in messages:
        for field in message.field:
            field.ClearField("json_name")
        _strip_json_names(message.nested_type)


def test_committed_code_matches_proto_files(tmp_path):
    """Recompiles protos/*.proto and compares the file descriptors."""
    pytest.importorskip("grpc_tools")
    protos = sorted(os.listdir(os.path.join(REPO, "protos")))
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-Idelf_tf/protos=protos",
         f"--descriptor_set_out={tmp_path / 'set.pb'}"] + [f"protos/{p}" for p in protos],
        cwd=REPO, check=True)
    fresh = descriptor_pb2.FileDescriptorSet.FromString((tmp_path / "set.pb").read_bytes())
    modules = {"datum.proto": datum_pb2, "feature.proto": feature_pb2, "box.proto": box_pb2,
               "delf_config.proto": delf_config_pb2,
               "aggregation_config.proto": aggregation_config_pb2}
    assert len(fresh.file) == len(modules)
    for file_proto in fresh.file:
        committed = descriptor_pb2.FileDescriptorProto()
        modules[os.path.basename(file_proto.name)].DESCRIPTOR.CopyToProto(committed)
        file_proto.ClearField("source_code_info")
        _strip_json_names(file_proto.message_type)
        _strip_json_names(committed.message_type)
        assert committed == file_proto, file_proto.name
