"""Speech synthesis: the Synthesizer protocol, voices, text front end (GUI-free)."""
