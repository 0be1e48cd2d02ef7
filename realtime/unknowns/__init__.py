"""Unknown faces kept, grouped by person, and named later (``recognition.collect_unknown``).

``grouping``: agglomerative clustering of unknown tracks by their views' embeddings (pure);
``quality``: which views are worth keeping and the storage caps (pure); ``sheet``: a group's
contact sheet.
"""
