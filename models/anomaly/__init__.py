"""Node anomaly detection: SpaceGNN (multi-space GNN for extremely limited labels) and baselines, on graph
datasets from the user's folder and on gate-level netlists of this project's hardware with injected
Trojans and outliers. CLI: python -m models.anomaly train|eval --dataset NAME|PATH --method spacegnn,..."""

METHODS = ("spacegnn", "mlp", "gcn", "gat", "graphsage", "bwgnn", "h2gcn")
