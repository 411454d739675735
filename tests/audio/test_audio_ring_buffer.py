import threading

import numpy as np
from audio_test_utils import retained_allocations

from voicebot.audio import ring_buffer
from voicebot.audio.ring_buffer import RingBuffer


def test_reads_return_frames_in_order_across_wraps():
    ring = RingBuffer(100)
    reader = ring.reader()
    expected = np.arange(1000, dtype=np.float32)
    got = []
    for start in range(0, 1000, 37):  # block size that does not divide the capacity
        ring.write(expected[start:start + 37])
        got.append(reader.read())
    assert np.array_equal(np.concatenate(got), expected)
    assert reader.dropped_frames == 0


def test_latest_is_a_contiguous_view_of_the_newest_frames():
    ring = RingBuffer(64, channels=2)
    frames = np.stack([np.arange(150), -np.arange(150)], axis=1).astype(np.float32)
    for start in range(0, 150, 25):
        ring.write(frames[start:start + 25])
    latest = ring.latest(64)
    assert latest.base is not None  # a view, not a copy
    assert latest.flags["C_CONTIGUOUS"]
    assert np.array_equal(latest, frames[-64:])
    assert np.array_equal(ring.latest(10), frames[-10:])
    assert len(RingBuffer(8).latest(5)) == 0  # nothing written yet


def test_a_reader_that_falls_behind_counts_the_loss_and_resumes_at_the_oldest_frame():
    ring = RingBuffer(50)
    reader = ring.reader()
    ring.write(np.arange(120, dtype=np.float32))
    out = reader.read()
    assert reader.dropped_frames == 70
    assert np.array_equal(out, np.arange(70, 120))


def test_a_write_larger_than_the_buffer_keeps_the_newest_frames():
    ring = RingBuffer(10)
    ring.write(np.arange(25, dtype=np.float32))
    assert ring.writer_dropped == 15
    assert np.array_equal(ring.latest(10), np.arange(15, 25))


def test_independent_readers_each_get_every_frame():
    ring = RingBuffer(100)
    first, second = ring.reader(), ring.reader()
    ring.write(np.arange(30, dtype=np.float32))
    assert np.array_equal(first.read(), np.arange(30))
    ring.write(np.arange(30, 40, dtype=np.float32))
    assert np.array_equal(second.read(), np.arange(40))
    assert np.array_equal(first.read(), np.arange(30, 40))


def test_read_into_a_preallocated_array():
    ring = RingBuffer(100)
    reader = ring.reader()
    ring.write(np.arange(30, dtype=np.float32))
    out = np.zeros(16, np.float32)
    part = reader.read(out=out)
    assert part.base is out or part is out or np.shares_memory(part, out)
    assert np.array_equal(part, np.arange(16))
    assert np.array_equal(reader.read(), np.arange(16, 30))


def test_concurrent_writer_and_reader_never_see_torn_frames():
    # The writer runs flat out, so the reader is lapped now and then: every chunk it gets
    # must still be a run of consecutive frames, and whatever it missed must be counted.
    ring = RingBuffer(4_800, dtype=np.float64)  # float64 holds the frame numbers exactly
    reader = ring.reader()
    total = 400_000
    block = 441

    def produce():
        for start in range(0, total, block):
            ring.write(np.arange(start, min(start + block, total), dtype=np.float64))

    writer = threading.Thread(target=produce)
    writer.start()
    chunks = []
    while writer.is_alive() or reader.available:
        chunk = reader.read()
        if len(chunk):
            chunks.append(chunk)
    writer.join()
    previous_end = -1.0
    for chunk in chunks:
        assert np.array_equal(chunk, np.arange(chunk[0], chunk[0] + len(chunk)))
        assert chunk[0] > previous_end
        previous_end = chunk[-1]
    assert previous_end == total - 1
    assert sum(len(c) for c in chunks) + reader.dropped_frames == total


def test_writing_allocates_no_memory():
    ring = RingBuffer(4800)
    block = np.ones(441, np.float32)
    ring.write(block)
    assert retained_allocations(lambda: all(ring.write(block) is None for _ in range(2000)),
                                ring_buffer.__file__) < 1024
