"""Train the house-price model: LightGBM behind a scikit-learn pipeline, saved with skops.

Contract: read $MLOPS_TRAIN_PATH, write $MLOPS_MODEL_PATH; hyper-parameters come from params.yaml
(shown base vs head in the PR comment).
"""

import os

import lightgbm
import pandas as pd
import skops.io as sio
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

NUMERIC = ["area_m2", "rooms", "age_years", "distance_km"]
CATEGORICAL = ["neighbourhood"]


def main():
    with open("params.yaml", encoding="utf-8") as handle:
        params = yaml.safe_load(handle)["train"]
    frame = pd.read_csv(os.environ["MLOPS_TRAIN_PATH"])
    features = ColumnTransformer([
        ("numeric", "passthrough", NUMERIC),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])
    regressor = lightgbm.LGBMRegressor(random_state=int(os.environ.get("MLOPS_SEED", "0")), verbose=-1,
                                       **params)
    model = Pipeline([("features", features), ("model", regressor)])
    model.fit(frame[NUMERIC + CATEGORICAL], frame["price"])
    sio.dump(model, os.environ["MLOPS_MODEL_PATH"])
    print(f"trained LightGBM ({params}) on {len(frame)} rows")


if __name__ == "__main__":
    main()
