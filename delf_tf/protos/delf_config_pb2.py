"""Messages of protos/delf_config.proto: DelfPcaParameters, DelfLocalFeatureConfig,
DelfGlobalFeatureConfig, DelfConfig."""

from delf_tf.protos._descriptor_set import build_messages

DESCRIPTOR = build_messages("delf_tf/protos/delf_config.proto", globals())
