from delf_tf.progress import Progress, format_seconds


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_counts_rate_and_eta():
    clock, lines = _Clock(), []
    progress = Progress(10, "Read features of", unit="images", log=lines.append, every=5,
                        clock=clock)
    for _ in range(10):
        clock.now += 2.0
        progress.step()
    assert lines == ["Read features of 5/10 images (2.00 s each, ETA 10 s)",
                     "Read features of 10/10 images (2.00 s each, took 20 s)"]


def test_rate_per_second_and_notes():
    clock, lines = _Clock(), []
    progress = Progress(300, "Verified", log=lines.append, every=100, clock=clock)
    clock.now = 10.0
    progress.step(100, note="3 queries")
    assert lines == ["Verified 100/300 (3 queries, 10/s, ETA 20 s)"]
    assert format_seconds(150) == "2.5 min" and format_seconds(7200) == "2.0 h"


def test_resumed_job_counts_its_rate_from_where_it_started():
    clock, lines = _Clock(), []
    progress = Progress(300, "step", log=lines.append, every=50, clock=clock, initial=200)
    clock.now = 100.0
    progress.step(50, note="loss 1.5")
    assert lines == ["step 250/300 (loss 1.5, 2.00 s each, ETA 1.7 min)"]


def test_steps_of_several_items_report_when_they_pass_a_multiple_of_every():
    clock, lines = _Clock(), []
    progress = Progress(20, "Aggregated", log=lines.append, every=5, clock=clock)
    for _ in range(5):
        clock.now += 3.0
        progress.step(4)
    assert [line.split(" (")[0] for line in lines] == [
        "Aggregated 8/20", "Aggregated 12/20", "Aggregated 16/20", "Aggregated 20/20"]
