"""Front ends only: the Textual app and the prompt-toolkit line mode, over the core's API."""
