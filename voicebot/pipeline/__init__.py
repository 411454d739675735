"""The conversation turn: state machine, workers, timing, barge-in (GUI-free)."""
