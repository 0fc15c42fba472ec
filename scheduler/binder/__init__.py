"""Binding pods to nodes through the ``pods/binding`` subresource."""
