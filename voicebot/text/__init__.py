"""The text front end: one set of rules for cutting, cleaning and normalising text.

Both the chat side and the voices use it, so a reply is cut into speakable pieces once,
by one rule, and every table (abbreviations, months) exists once. It imports nothing
else from voicebot: it sits below ``lm``, ``asr``, ``tts`` and ``pipeline``.

- ``split``: sentences, the first piece of a reply, long pieces (the one rule and its
  constants);
- ``abbreviations``: the abbreviation table (sentence ends, speech, scoring);
- ``cleanup``: what a voice must never read (markdown, links, e-mail addresses, emoji,
  other scripts);
- ``spoken``: written text -> the words a voice reads ("$3.50" -> "three dollars and
  fifty cents");
- ``scoring``: words for word error rates and n-gram LMs;
- ``display``: recognised text for display.
"""
