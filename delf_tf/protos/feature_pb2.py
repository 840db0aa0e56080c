"""Messages of protos/feature.proto: DelfFeature, DelfFeatures."""

from delf_tf.protos._descriptor_set import build_messages

DESCRIPTOR = build_messages("delf_tf/protos/feature.proto", globals())
