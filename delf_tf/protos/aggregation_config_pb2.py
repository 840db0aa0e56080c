"""Messages of protos/aggregation_config.proto: AggregationConfig."""

from delf_tf.protos._descriptor_set import build_messages

DESCRIPTOR = build_messages("delf_tf/protos/aggregation_config.proto", globals())
