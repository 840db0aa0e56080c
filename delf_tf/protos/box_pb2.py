"""Messages of protos/box.proto: Box, Boxes."""

from delf_tf.protos._descriptor_set import build_messages

DESCRIPTOR = build_messages("delf_tf/protos/box.proto", globals())
