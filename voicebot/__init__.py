"""voicebot: a local, offline desktop voice chatbot with a voice-adaptation studio."""

__version__ = "0.1.0"
APP_NAME = "voicebot"
APP_DISPLAY_NAME = "Voicebot"
