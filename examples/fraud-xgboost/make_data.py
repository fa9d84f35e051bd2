"""Regenerate the synthetic card-transaction data (deterministic): `python make_data.py`."""

import numpy as np
import pandas as pd


def transactions(rows, seed):
    rng = np.random.default_rng(seed)
    channel = rng.choice(["in_store", "online", "phone"], rows, p=[0.5, 0.4, 0.1])
    age_band = rng.choice(["18-30", "31-50", "51+"], rows, p=[0.3, 0.45, 0.25])
    amount = rng.lognormal(3.6, 1.0, rows).round(2)
    hour = rng.integers(0, 24, rows)
    account_age = rng.integers(1, 3000, rows)
    distance = rng.gamma(1.5, 12.0, rows).round(1)
    foreign = rng.random(rows) < 0.08
    night = (hour < 6).astype(float)
    logit = (-4.5 + 1.8 * np.log1p(amount / 100) + 2.5 * night + 3.0 * foreign
             + 1.8 * (channel == "online") + 1.0 * (channel == "phone")
             - 1.0 * np.log1p(account_age / 365) + 0.04 * distance)
    fraud = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"transaction_id": np.arange(seed * 100_000, seed * 100_000 + rows),
                         "amount": amount, "hour": hour, "account_age_days": account_age,
                         "distance_km": distance, "foreign": foreign.astype(int), "channel": channel,
                         "age_band": age_band, "fraud": fraud})


if __name__ == "__main__":
    transactions(2000, 1).to_csv("data/train.csv", index=False)
    transactions(1000, 2).to_csv("data/holdout.csv", index=False)
