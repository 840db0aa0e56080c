"""Messages of protos/datum.proto: DatumShape, FloatList, Uint, DatumProto, DatumPairProto."""

from delf_tf.protos._descriptor_set import build_messages

DESCRIPTOR = build_messages("delf_tf/protos/datum.proto", globals())
