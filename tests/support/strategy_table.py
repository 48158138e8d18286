"""Every strategy as the service tests request it: the in-process Strategy beside the wire parameters
that name it exactly (the rule too: the shipped default rule is not the paper's)."""

from ecdiff.strategies import CloudOnly, ECDiff, EdgeOnly, HybridSD


def strategy_table(ecdiff: ECDiff, cloud_steps: int) -> dict:
    """name -> (Strategy, StrategyParams fields)."""
    return {
        "ecdiff": (ecdiff, dict(pre_steps=ecdiff.pre_steps, k=ecdiff.k, alpha=ecdiff.alpha,
                                switch_step=ecdiff.switch_step, rule=ecdiff.rule)),
        "hybrid": (HybridSD(cloud_steps), dict(cloud_steps=cloud_steps)),
        "cloud": (CloudOnly(), {}),
        "edge": (EdgeOnly(), {}),
    }
