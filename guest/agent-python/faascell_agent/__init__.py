"""FaaSCell's guest agent for Python functions (see main.py)."""
