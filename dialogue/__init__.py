"""Dialogue: the Rasa HTTP client, the Rasa input channel, and the custom actions."""
