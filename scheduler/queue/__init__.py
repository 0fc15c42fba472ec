"""The scheduling queue: which pod is tried next, and when a failed one comes back."""
