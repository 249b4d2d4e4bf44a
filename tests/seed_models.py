"""Each seed model at sizes small enough to compile in seconds, for tests that run every
one (`seqjax.models.build_model(name, **SMALL[name])`)."""

SMALL = {
    "trust": dict(features=6, hidden_sizes=(5, 4, 3)),
    "steel": dict(features=3, hidden_size=32, bidirectional=True, classifier_dims=(4,)),
    "trend": dict(features=3, hidden_size=4, head_dim=4),
    "hybrid": dict(
        features=3, d_model=8, num_heads=2, head_dims=(4,), lstm_blocks=1, attention_after=(1,)
    ),
    "lstm_baseline": dict(features=3, hidden_size=4),
}
