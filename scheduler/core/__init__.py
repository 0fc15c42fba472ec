"""The scheduler proper: watch events in, scheduling cycles, binding cycles out."""
