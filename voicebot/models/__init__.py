"""The model store: catalog, resolving, downloading, verifying, importing (GUI-free)."""
