"""The bottom layer: plain values every other layer may hold; imports nothing above.

``objects`` holds typed, lean views of the API objects the scheduler reads. Watch
events and lists are decoded straight from raw JSON into these msgspec structs:
only the fields scheduling needs are kept, so a pod costs a few kilobytes and
microseconds instead of a client model object per event. ``quantity`` parses
resource amounts; ``refs`` names objects (for Events and status) and stamps times.
"""
