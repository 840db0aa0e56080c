"""Boxes <-> Boxes protos and files (the original's `box_io`).

Boxes are [N, 4] arrays of [ymin, xmin, ymax, xmax]; scores [N]; class indices [N].
"""

import numpy as np
from google.protobuf import message

from delf_tf.io import atomic
from delf_tf.protos import box_pb2

__all__ = [
    # The original's names (the compatibility surface).
    "ArraysToBoxes", "BoxesToArrays", "SerializeToString", "ParseFromString", "WriteToFile",
    "ReadFromFile",
    # delf_tf's own API.
    "BoxArrays",
]

BoxArrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def ArraysToBoxes(boxes: np.ndarray, scores: np.ndarray,
                  class_indices: np.ndarray) -> box_pb2.Boxes:
    boxes = np.asarray(boxes)
    num_boxes = len(boxes)
    if len(scores) != num_boxes or len(class_indices) != num_boxes:
        raise ValueError(
            f"boxes ({num_boxes}), scores ({len(scores)}) and class_indices "
            f"({len(class_indices)}) must have the same length")
    if num_boxes and (boxes.ndim != 2 or boxes.shape[1] != 4):
        raise ValueError(f"boxes must be [N, 4], got shape {boxes.shape}")
    boxes_proto = box_pb2.Boxes()
    for i in range(num_boxes):
        box = boxes_proto.box.add()
        box.ymin, box.xmin, box.ymax, box.xmax = (float(v) for v in boxes[i])
        box.score = scores[i]
        box.class_index = int(class_indices[i])
    return boxes_proto


def BoxesToArrays(boxes_proto: box_pb2.Boxes) -> BoxArrays:
    """Returns (boxes [N,4] float32, scores [N] float32, class_indices [N] int32);
    zero boxes give three empty arrays."""
    num_boxes = len(boxes_proto.box)
    if num_boxes == 0:
        return np.array([]), np.array([]), np.array([])
    boxes = np.zeros([num_boxes, 4], dtype=np.float32)
    scores = np.zeros([num_boxes], dtype=np.float32)
    class_indices = np.zeros([num_boxes], dtype=np.int32)
    for i, box in enumerate(boxes_proto.box):
        boxes[i] = (box.ymin, box.xmin, box.ymax, box.xmax)
        scores[i] = box.score
        class_indices[i] = box.class_index
    return boxes, scores, class_indices


def SerializeToString(boxes, scores, class_indices) -> bytes:
    return ArraysToBoxes(boxes, scores, class_indices).SerializeToString()


def ParseFromString(string: bytes, source: str = "input") -> BoxArrays:
    boxes_proto = box_pb2.Boxes()
    try:
        boxes_proto.ParseFromString(string)
    except message.DecodeError as e:
        raise ValueError(f"{source} is not a valid Boxes file: {e}") from e
    return BoxesToArrays(boxes_proto)


def WriteToFile(file_path: str, boxes, scores, class_indices) -> None:
    """Writes boxes to `file_path` (atomically). Note: path comes first."""
    atomic.write_bytes_atomic(file_path, SerializeToString(boxes, scores, class_indices))


def ReadFromFile(file_path: str) -> BoxArrays:
    return ParseFromString(atomic.read_bytes(file_path), source=str(file_path))
