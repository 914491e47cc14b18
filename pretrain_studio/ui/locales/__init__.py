"""The UI's translations, one module per language (en.py, zh.py), each a plain dict `MESSAGES`: key -> text."""
