"""The scheduling framework: filters and scores with names, run over nodes.

``types`` declares what a plugin sees (``PodInfo``, ``NodeInfo``) and the two
extension points we implement (``FilterPlugin``, ``ScorePlugin``);
``plugins/`` holds one module per plugin; ``cycle`` runs them for one pod.
"""
