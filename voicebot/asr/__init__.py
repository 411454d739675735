"""Speech recognition: the Recognizer protocol, engines, n-best and rescoring (GUI-free)."""
