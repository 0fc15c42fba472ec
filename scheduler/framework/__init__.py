"""The scheduling framework: plugins with names, run over nodes.

``types`` declares what a plugin sees (``PodInfo``, ``NodeInfo``) and the extension
points we implement (``PreEnqueuePlugin``, ``FilterPlugin``, ``ScorePlugin``);
``podinfo``, ``nodeinfo``, ``signature`` and ``node_selectors`` compute a pod's and a
node's facts once; ``plugins/`` holds one module per plugin; ``cycle`` runs them for
one pod, ``batching`` reuses their results across pods of one signature and
``diagnosis`` words the "0/N nodes are available" message. Plugins
build on the rest, never the reverse (``.importlinter``).
"""
