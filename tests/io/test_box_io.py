"""box_io: round trips, empty input, files, bad input."""

import numpy as np
import pytest

from delf_tf.io import box_io


def test_round_trip(tmp_path):
    boxes = np.array([[0.1, 0.2, 0.3, 0.4], [1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    scores = np.array([0.9, 0.5], dtype=np.float32)
    classes = np.array([3, 7])
    path = str(tmp_path / "a.boxes")
    box_io.WriteToFile(path, boxes, scores, classes)
    out_boxes, out_scores, out_classes = box_io.ReadFromFile(path)
    np.testing.assert_allclose(out_boxes, boxes)
    np.testing.assert_allclose(out_scores, scores)
    np.testing.assert_array_equal(out_classes, classes)
    proto = box_io.ArraysToBoxes(boxes, scores, classes)
    assert (proto.box[1].ymin, proto.box[1].xmin, proto.box[1].ymax, proto.box[1].xmax) == (
        1.0, 2.0, 3.0, 4.0)


def test_zero_boxes_give_three_empty_arrays():
    out = box_io.ParseFromString(box_io.SerializeToString(np.zeros([0, 4]), [], []))
    assert len(out) == 3 and all(arr.size == 0 for arr in out)


def test_corrupt_file_names_the_file(tmp_path):
    path = tmp_path / "bad.boxes"
    path.write_bytes(b"\x0a\xff\xff\xff\xff\x0f")
    with pytest.raises(ValueError, match="bad.boxes"):
        box_io.ReadFromFile(str(path))
