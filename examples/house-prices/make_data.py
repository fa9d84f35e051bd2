"""Regenerate the synthetic house-price data (deterministic): `python make_data.py`."""

import numpy as np
import pandas as pd


def houses(rows, seed):
    rng = np.random.default_rng(seed)
    neighbourhood = rng.choice(["centre", "harbour", "hills", "suburbs"], rows, p=[0.2, 0.2, 0.25, 0.35])
    area = rng.gamma(6.0, 18.0, rows).round(1)
    rooms = np.clip((area / 28 + rng.normal(0, 0.8, rows)).round(), 1, 9).astype(int)
    age = rng.integers(0, 90, rows)
    distance = rng.gamma(2.0, 4.0, rows).round(2)
    base = {"centre": 5200.0, "harbour": 4600.0, "hills": 3900.0, "suburbs": 3100.0}
    per_m2 = np.array([base[n] for n in neighbourhood])
    price = (per_m2 * area * (1 - 0.0025 * age) * np.exp(-0.015 * distance)
             + 9000 * rooms + rng.normal(0, 25_000, rows))
    return pd.DataFrame({"house_id": np.arange(seed * 100_000, seed * 100_000 + rows), "area_m2": area,
                         "rooms": rooms, "age_years": age, "distance_km": distance,
                         "neighbourhood": neighbourhood, "price": price.round(-2)})


if __name__ == "__main__":
    houses(800, 1).to_csv("data/train.csv", index=False)
    houses(400, 2).to_csv("data/holdout.csv", index=False)
