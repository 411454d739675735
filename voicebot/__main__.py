"""`python -m voicebot` behaves exactly like the `voicebot` command."""

import sys

from voicebot.cli import main

if __name__ == "__main__":
    sys.exit(main())
