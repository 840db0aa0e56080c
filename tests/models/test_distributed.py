"""A DELG training step under MirroredStrategy (two logical CPUs) updates every head."""

import json
import math
import os
import subprocess
import sys


def test_mirrored_delg_step_changes_weights():
    script = os.path.join(os.path.dirname(__file__), "mirrored_step.py")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, script], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert math.isfinite(report["loss"])
    assert report["changed"] == {"backbone": True, "attention": True, "autoencoder": True,
                                 "desc_fc": True, "att_fc": True}
